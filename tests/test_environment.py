"""requirements.txt, constraints.txt (the lock) and environment.yml (Binder, conda) agree."""


import yaml

from vampire_detector.paths import course_root

ROOT = course_root()


def requirement_pins() -> set[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return {line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()}


def environment_pins() -> set[str]:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(dep["pip"] for dep in environment["dependencies"] if isinstance(dep, dict))
    return set(pip)


def test_environment_and_requirements_pin_the_same_packages():
    assert environment_pins() == requirement_pins()


def test_every_requirement_is_pinned_exactly():
    assert all("==" in pin for pin in requirement_pins())


def test_the_lock_pins_every_requirement_at_the_same_version():
    """A requirement changed without ``make lock`` would not install against the lock."""
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    locked = {line.lower().replace("_", "-") for line in lines if "==" in line}
    stale = {pin for pin in requirement_pins() if pin.lower().replace("_", "-") not in locked}
    assert not stale, f"run `make lock`: constraints.txt does not pin {sorted(stale)}"
