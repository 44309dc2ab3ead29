"""The integer MLP inference engine (``mlp``) and its parts (``requant``)."""
