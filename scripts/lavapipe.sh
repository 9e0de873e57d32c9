#!/usr/bin/env bash
# Installs Mesa's lavapipe (a conformant Vulkan 1.3 driver that runs on the CPU) from the
# distribution's packages, so that burn's wgpu backend runs without a GPU. Exits non-zero
# with a one-line reason when it cannot (no apt, no root or sudo, the install failed).
set -euo pipefail
if ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
    exit 0
fi
command -v apt-get >/dev/null 2>&1 || { echo "lavapipe.sh: apt-get not found; install Mesa's Vulkan drivers (lavapipe) by hand" >&2; exit 1; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    sudo -n true 2>/dev/null || { echo "lavapipe.sh: needs root or passwordless sudo to install mesa-vulkan-drivers" >&2; exit 1; }
    SUDO="sudo -n"
fi
$SUDO apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers >/dev/null 2>&1 \
    || { $SUDO apt-get update -qq >/dev/null 2>&1 && $SUDO apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers >/dev/null; } \
    || { echo "lavapipe.sh: apt-get install mesa-vulkan-drivers failed" >&2; exit 1; }
ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || { echo "lavapipe.sh: mesa-vulkan-drivers installed no lavapipe ICD" >&2; exit 1; }
