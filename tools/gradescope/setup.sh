#!/usr/bin/env bash
# Gradescope's setup for this course's autograder image (run once, as root, in /autograder/source).
set -euo pipefail
apt-get update
apt-get install -y bubblewrap prometheus python3-venv python3-pip
python3 -m pip install -r requirements.txt -c constraints.txt
python3 -m pip install --no-deps -e .
