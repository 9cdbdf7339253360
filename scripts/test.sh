#!/usr/bin/env bash
# Fresh machine → whole test suite: installs everything, then type-check/build, lint, format
# check and every test (unit, conformance, multi-process, CLI end to end).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
npm test
