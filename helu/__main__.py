from helu.cli import main

raise SystemExit(main())
