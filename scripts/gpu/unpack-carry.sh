# Sourced by the scripts/gpu-check-*.sh that run the built CLI on a GPU machine (no Node.js
# there): unpacks what scripts/gpu-carry.sh packed (.carry/node.xz, .carry/app.tar.xz) into
# this checkout, sets NODE to the carried node, and checks the GPU machine has what the checks
# use (nvidia-smi, PyTorch with CUDA). Needs the caller's `fail` function.
unpack_carry() {
  [ -s .carry/node.xz ] && [ -s .carry/app.tar.xz ] || fail ".carry/node.xz and .carry/app.tar.xz are missing: run scripts/gpu-carry.sh on the build machine and name \".carry\" in the device call's carry"
  xz -dc .carry/node.xz > /tmp/gpushare-node && chmod +x /tmp/gpushare-node || fail "cannot unpack the carried node"
  tar -xJf .carry/app.tar.xz || fail "cannot unpack .carry/app.tar.xz"
  export NODE=/tmp/gpushare-node
  "$NODE" bin/gpushare.js --version > /dev/null || fail "the carried CLI does not start with the carried node ($(cat .carry/node.version 2>/dev/null))"
}

# The GPU machine's own checks: a driver, and PyTorch that sees a GPU.
check_gpu_machine() {
  command -v nvidia-smi > /dev/null || fail "no nvidia-smi: not a GPU machine"
  python3 -c "import torch; assert torch.cuda.is_available()" || fail "python3 has no PyTorch with CUDA"
}
