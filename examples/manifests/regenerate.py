"""Rewrite the example manifests from the seed's prototypes (`ks generate seldon-<p>-<v> NAME ...`).

Run: python examples/manifests/regenerate.py
The v1alpha2 files sit in this folder, the v1alpha1 ones in v1alpha1/.   (tests/spec checks the files match)
"""

from __future__ import annotations

from pathlib import Path

import yaml

from seldon_serving.spec import generate

MOCK = "seldonio/mock_classifier:1.0"
# name -> (prototype, options): the seed page's four examples
SEED_EXAMPLES: dict[str, tuple[str, dict[str, str]]] = {
    "mymodel": ("serve-simple", {"image": MOCK}),
    "myabtest": ("abtest", {"image_a": MOCK, "image_b": MOCK}),
    "mymab": ("mab", {"image_a": MOCK, "image_b": MOCK}),
    "myout": ("outlier-detector", {"image": MOCK}),
}


def example_path(here: Path, name: str, version: str) -> Path:
    """v1alpha2 (what `seldon serve examples/manifests` serves) here; v1alpha1 in a subfolder,
    so one directory never holds two deployments of the same name."""
    folder = here if version == "v1alpha2" else here / version
    folder.mkdir(exist_ok=True)
    return folder / f"{name}.yaml"


def main() -> None:
    here = Path(__file__).resolve().parent
    for name, (prototype, options) in SEED_EXAMPLES.items():
        for version in ("v1alpha1", "v1alpha2"):
            doc = generate(prototype, name, api_version=version, **options)
            header = f"# ks generate seldon-{prototype}-{version} {name} " + " ".join(
                f"--{'image' + k[-1].upper() if k.startswith('image_') else k}={v}"
                for k, v in options.items()
            )
            text = header + "\n" + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
            example_path(here, name, version).write_text(text)


if __name__ == "__main__":
    main()
