#!/usr/bin/env bash
# Fresh machine → the main job. Until the lab lands (issue 8) the main job is the tour of the
# CLI against the embedded sqlite datastore: apply a multi-document YAML of Calico resources,
# read them back as tables and YAML, and see a precise error for a broken file.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec bash scripts/tour.sh
