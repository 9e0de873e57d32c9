# Shared set-up for the scripts: a build cache outside the work tree, and the system
# packages the tests and the quick-start need. Source it; it is idempotent.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/m2m/target}"
mkdir -p "$CARGO_TARGET_DIR"

# Fashion-MNIST (Debian's dataset-fashion-mnist) is the CPU benchmark and the data of the
# quick-start; it installs the IDX files into /usr/share/datasets/fashion-mnist.
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && [ -z "${M2M_DATA:-}" ]; then
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""
        [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        $SUDO apt-get update -qq
        $SUDO apt-get install -y -qq dataset-fashion-mnist
    else
        echo "Fashion-MNIST is missing: install Debian's dataset-fashion-mnist or set M2M_DATA" >&2
        exit 1
    fi
fi
