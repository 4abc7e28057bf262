#!/usr/bin/env python3
"""Build semillero's images and run studies inside them: the `make docker-*` targets.

Standard library only, so a GPU workstation needs Python 3, make, Docker and the NVIDIA
Container Toolkit, and no venv, to run a study in the image. Every command is printed before
it runs; `--dry-run` prints it and stops.

    python3 docker/run.py build [--image semillero:dev] [--dry-run]
    python3 docker/run.py sweep EXP=iberotales_grpo [SCALE=tiny] [hydra overrides…] [--dry-run]
    python3 docker/run.py smoke [--dry-run]
    python3 docker/run.py test-gpu [--dry-run]
    python3 docker/run.py bench [SCALE=tiny] [--dry-run]
    python3 docker/run.py push --image ghcr.io/<owner>/semillero:<tag> [--dry-run]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# image -> (Dockerfile, the lock it installs). The lock's sha256 becomes a label and is checked
# inside the build, so a label can never name a lock the image was not built from.
IMAGES = {
    "semillero": ("docker/semillero.Dockerfile", "requirements/cuda.txt"),
    "axolotl": ("docker/axolotl.Dockerfile", "requirements/axolotl-cuda.txt"),
}

# Passed through by name only (`-e NAME`): Docker copies the value from this environment at
# run time, so no secret is ever written into a command line, an image or a log.
PASSTHROUGH = (
    "WANDB_API_KEY",
    "WANDB_MODE",
    "WANDB_PROJECT",
    "WANDB_ENTITY",
    "WANDB_BASE_URL",
    "HF_TOKEN",
    "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "SEMILLERO_JOBS",  # LAUNCHER=gpus: parallel jobs, one GPU each
)

# The smoke and the tests never reach a hub, and log to W&B offline, as `make smoke` does.
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "offline"}

WORKDIR = "/workspace"  # the repository's copy inside the image
CACHE = "/cache"  # HF cache, twin tokenizers, compiled kernels: a named volume
IMAGE_UID = "1000:1000"  # the image's own non-root user, `semillero`


def lock_sha256(lock: str) -> str:
    return hashlib.sha256((ROOT / lock).read_bytes()).hexdigest()


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def host_user() -> str:
    """Run as the calling user, so files in the mounted outputs/ are theirs; never as root."""
    uid, gid = os.getuid(), os.getgid()
    return IMAGE_UID if uid == 0 else f"{uid}:{gid}"


@dataclass
class Options:
    image: str = "semillero:dev"
    gpus: str = "all"  # `all`, or device ids: "0,1"
    cache_volume: str = "semillero-cache"
    outputs: Path = field(default_factory=lambda: ROOT / "outputs")
    conf: Path = field(default_factory=lambda: ROOT / "conf")
    flash_attn: bool = True
    platform: str = "linux/amd64"


def image_refs(image: str) -> dict[str, str]:
    """`semillero:dev` -> that, plus `semillero-axolotl:dev` (a registry prefix is kept)."""
    registry, _, last = image.rpartition("/")  # a registry may carry a port: host:5000/name
    name, _, tag = last.partition(":")
    prefix = f"{registry}/" if registry else ""
    tag = tag or "dev"
    return {"semillero": f"{prefix}{name}:{tag}", "axolotl": f"{prefix}{name}-axolotl:{tag}"}


def build_commands(opts: Options) -> list[list[str]]:
    """One `docker build` per image, labelled with the commit and the lock's sha256."""
    commands = []
    for image, ref in image_refs(opts.image).items():
        dockerfile, lock = IMAGES[image]
        cmd = ["docker", "build", "--platform", opts.platform, "-f", dockerfile, "-t", ref]
        cmd += ["--build-arg", f"GIT_COMMIT={git_commit()}"]
        cmd += ["--build-arg", f"LOCK_SHA256={lock_sha256(lock)}"]
        cmd += ["--build-arg", f"IMAGE={ref}"]
        if image == "semillero":  # it carries Axolotl's venv too, checked the same way
            axolotl_lock = IMAGES["axolotl"][1]
            cmd += ["--build-arg", f"AXOLOTL_LOCK_SHA256={lock_sha256(axolotl_lock)}"]
            cmd += ["--build-arg", f"FLASH_ATTN={int(opts.flash_attn)}"]
        commands.append([*cmd, str(ROOT)])
    return commands


def gpu_flag(gpus: str) -> list[str]:
    if gpus in ("", "none"):
        return []
    return ["--gpus", gpus if gpus == "all" else f'"device={gpus}"']


def run_command(
    opts: Options,
    argv: list[str],
    env: dict[str, str] | None = None,
    writable: tuple[str, ...] = (),
) -> list[str]:
    """`docker run` of one command in the main image, with the repo's conf/ mounted read-only.

    A config change needs no rebuild; outputs land in the checkout's outputs/ as on the host.
    """
    cmd = ["docker", "run", "--rm", "--init", "--ipc=host", *gpu_flag(opts.gpus)]
    cmd += ["--user", host_user()]
    cmd += ["-v", f"{opts.conf}:{WORKDIR}/conf:ro"]
    cmd += ["-v", f"{opts.conf.parent / 'experiments'}:{WORKDIR}/experiments:ro"]  # references
    cmd += ["-v", f"{opts.outputs}:{WORKDIR}/outputs"]
    cmd += ["-v", f"{opts.cache_volume}:{CACHE}"]
    for folder in writable:  # repository folders a command writes its results into
        cmd += ["-v", f"{opts.conf.parent / folder}:{WORKDIR}/{folder}"]
    for name in PASSTHROUGH:
        if name not in (env or {}):
            cmd += ["-e", name]
    for name, value in (env or {}).items():
        cmd += ["-e", f"{name}={value}"]
    if sys.stdin.isatty() and sys.stdout.isatty():
        cmd.append("-it")  # Ctrl-C reaches the run, which then leaves a resumable record
    return [*cmd, opts.image, *argv]


def commands_for(action: str, opts: Options, rest: list[str]) -> list[list[str]]:
    if action == "build":
        return build_commands(opts)
    if action == "push":
        return [["docker", "push", ref] for ref in image_refs(opts.image).values()]
    if action == "sweep":
        if not any(arg.startswith("EXP=") for arg in rest):
            raise SystemExit(
                "docker sweep needs a study: make docker-sweep EXP=<name in conf/experiment/>"
            )
        return [run_command(opts, ["semillero", "sweep", *rest])]
    if action == "smoke":
        smoke = ["semillero", "sweep", "EXP=gpt2_screening", "SCALE=tiny"]
        return [run_command(opts, [*smoke, *rest], env=OFFLINE)]
    if action == "test-gpu":
        return [run_command(opts, ["pytest", "-m", "gpu", "-v", *rest], env=OFFLINE)]
    if action == "bench":  # results go to the checkout's bench/ (results/ and the README)
        return [run_command(opts, ["semillero", "bench", *rest], env=OFFLINE, writable=("bench",))]
    raise SystemExit(f"unknown action {action!r}: build, push, sweep, smoke, test-gpu or bench")


def check_docker() -> None:
    if shutil.which("docker") is None:
        raise SystemExit(
            "docker: command not found. Install Docker Engine and the NVIDIA Container Toolkit "
            "(docker/README.md), or add --dry-run to print the command only."
        )
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        raise SystemExit(
            "docker is installed but its engine does not answer (`docker info` fails): start "
            "the Docker daemon, or add --dry-run to print the command only."
        )


def parse(argv: list[str]) -> tuple[str, Options, list[str], bool]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["build", "push", "sweep", "smoke", "test-gpu", "bench"])
    parser.add_argument("--image", default=Options.image, help="image (%(default)s)")
    parser.add_argument("--gpus", default=Options.gpus, help="`all`, device ids `0,1`, or `none`")
    parser.add_argument("--cache-volume", default=Options.cache_volume, help="volume for /cache")
    parser.add_argument("--outputs", type=Path, default=None, help="host folder for outputs/")
    parser.add_argument("--no-flash-attn", action="store_true", help="build without flash-attn")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args, rest = parser.parse_known_args(argv)
    opts = Options(
        image=args.image,
        gpus=args.gpus,
        cache_volume=args.cache_volume,
        flash_attn=not args.no_flash_attn,
    )
    if args.outputs is not None:
        opts.outputs = args.outputs.resolve()
    return args.action, opts, rest, args.dry_run


def main(argv: list[str] | None = None) -> int:
    action, opts, rest, dry_run = parse(sys.argv[1:] if argv is None else argv)
    commands = commands_for(action, opts, rest)
    for cmd in commands:
        print("$ " + shlex.join(cmd), flush=True)
    if dry_run:
        return 0
    check_docker()
    opts.outputs.mkdir(parents=True, exist_ok=True)
    for cmd in commands:
        code = subprocess.run(cmd).returncode
        if code != 0:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
