#!/usr/bin/env bash
# Debian packages the flow and the tests use. Installs what is missing when running as root;
# otherwise names what to install and carries on (the tests that need a tool then skip, saying so).
set -euo pipefail
declare -A needs=([iverilog]=iverilog [vvp]=iverilog [yosys]=yosys [nextpnr-ice40]=nextpnr-ice40)
missing=()
for tool in "${!needs[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("${needs[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "setup: missing Debian packages: ${missing[*]}; install them with" \
         "'sudo apt-get install ${missing[*]}' (the steps that need them will skip)" >&2
fi
