#!/usr/bin/env bash
# Fetch, here, the wheels the GPU machine lacks (its image has torch, peft, accelerate, psutil,
# pyarrow, aiohttp, huggingface-hub...; not datasets, deepspeed, our pinned transformers, or the
# text corpora). They travel with `carry=[".whl"]`; bench/gpu_check.sh installs them there.
set -euo pipefail
cd "$(dirname "$0")/.."
# .gitignore lists /.whl/; the exclude file too, for a checkout whose .gitignore is older.
# (git rev-parse: in a worktree .git is a file, not a directory.)
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qx '/.whl/' "$exclude" 2>/dev/null || echo /.whl/ >> "$exclude"
rm -rf .whl && mkdir -p .whl
pin() { grep -i "^$1==" requirements.lock | head -n1; }
plat=(--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any)
for name in transformers datasets dill multiprocess hjson gflanguages chatterbot-corpus tokenizers safetensors; do
  python3 -m pip download -q --no-deps "${plat[@]}" -d .whl "$(pin "$name")"
done
# DeepSpeed is an sdist: build a pure-Python wheel (ops JIT-compile on the GPU box with its nvcc).
DS_BUILD_OPS=0 .venv/bin/pip wheel -q --no-deps --no-build-isolation -w .whl "$(pin deepspeed)"
# With DS_BUILD_OPS=0 it holds no compiled code, but is tagged for this Python: retag it.
for w in .whl/deepspeed-*-cp3*.whl; do mv "$w" ".whl/$(basename "$w" | sed -E 's/-cp3[0-9]+-cp3[0-9]+-linux_x86_64/-py3-none-any/')"; done
du -sh .whl
