"""The hash-locked requirements agree with their declarations and with each other.

`make lock` writes requirements/*.txt from requirements/*.in; these tests fail when a lock is
stale (a declaration changed and `make lock` was not run), when a pin has no hash, or when
the CPU stack (CI) and the CUDA image's stack drift apart on a package they share.
"""

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
REQ = ROOT / "requirements"

# lock -> the declaration it is resolved from
LOCKS = {
    "cpu.txt": "cpu.in",
    "cuda.txt": "cuda.in",
    "flash-attn.txt": "flash-attn.in",
    "tools.txt": "tools.in",
    "axolotl-cpu.txt": "axolotl-cpu.in",
    "axolotl-cuda.txt": "axolotl.in",
}


def logical_lines(path: Path) -> list[str]:
    """A requirements file's lines with continuations joined and comments dropped."""
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = (line.split(" #", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def declared(name: str) -> list[Requirement]:
    """The requirements of a .in file, following its `-r` includes."""
    out: list[Requirement] = []
    for line in logical_lines(REQ / name):
        if line.startswith("-r "):
            out += declared(line.split(None, 1)[1])
        elif not line.startswith("-"):
            out.append(Requirement(line))
    return out


def pinned(name: str) -> dict[str, tuple[Version, list[str]]]:
    """A lock's pins: canonical name -> (version, hashes)."""
    pins: dict[str, tuple[Version, list[str]]] = {}
    for line in logical_lines(REQ / name):
        spec, *options = line.split(" --hash=")
        req = Requirement(spec.strip())
        (specifier,) = req.specifier
        assert specifier.operator == "==", f"{name}: {line!r} is not an exact pin"
        pins[canonicalize_name(req.name)] = (Version(specifier.version), options)
    return pins


def public(version: Version) -> str:
    return version.public  # 2.13.0+cpu and 2.13.0 are the same release


@pytest.mark.parametrize("lock", LOCKS)
def test_every_pin_has_a_hash(lock):
    pins = pinned(lock)
    assert pins, f"{lock} is empty"
    unhashed = [name for name, (_, hashes) in pins.items() if not hashes]
    assert not unhashed, f"{lock}: no --hash for {unhashed}; run `make lock`"


@pytest.mark.parametrize(("lock", "source"), LOCKS.items())
def test_the_lock_satisfies_its_declarations(lock, source):
    pins = pinned(lock)
    for req in declared(source):
        name = canonicalize_name(req.name)
        assert name in pins, f"{source} asks for {req}, {lock} lacks it: run `make lock`"
        version, _ = pins[name]
        assert req.specifier.contains(version, prereleases=True), (
            f"{source} asks for {req}, {lock} pins {version}: run `make lock`"
        )


def test_the_package_installs_from_the_cpu_lock():
    """pyproject's ranges (and extras) admit every version the CPU lock pins."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    pins = pinned("cpu.txt")
    for line in reqs:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in pins, f"pyproject.toml needs {req}; add it to requirements/*.in"
        assert req.specifier.contains(pins[name][0], prereleases=True), (
            f"pyproject.toml's {req} does not admit the locked {pins[name][0]}"
        )


PAIRS = [("cpu.txt", "cuda.txt"), ("axolotl-cpu.txt", "axolotl-cuda.txt")]


@pytest.mark.parametrize(("cpu", "cuda"), PAIRS)
def test_cpu_and_cuda_locks_pin_the_same_versions(cpu, cuda):
    cpu_pins, cuda_pins = pinned(cpu), pinned(cuda)
    shared = cpu_pins.keys() & cuda_pins.keys()
    assert "torch" in shared and "transformers" in shared
    differ = {
        name: (str(cpu_pins[name][0]), str(cuda_pins[name][0]))
        for name in sorted(shared)
        if public(cpu_pins[name][0]) != public(cuda_pins[name][0])
    }
    assert not differ, f"{cpu} and {cuda} disagree (cpu, cuda): {differ}; run `make lock`"


def test_the_cpu_lock_takes_the_cpu_build_of_torch():
    version, _ = pinned("cpu.txt")["torch"]
    assert version.local == "cpu", "cpu.txt must pin torch's +cpu build (no CUDA wheels in CI)"
    assert not [n for n in pinned("cpu.txt") if n.startswith("nvidia-")]


def test_the_image_lock_has_the_cuda_stack():
    pins = pinned("cuda.txt")
    assert pins["torch"][0].local is None
    assert any(name.startswith("nvidia-") for name in pins), "no CUDA libraries in cuda.txt"
    for name in ("deepspeed", "bitsandbytes", "einops", "ninja"):
        assert name in pins, f"cuda.txt lacks {name}"
