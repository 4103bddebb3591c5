"""Session fixtures for the deployment tests: the rendered kustomizations, the
CRD folder and one checkov run over everything, so each runs once per session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.deploy.deploy_support import (
    DEPLOY_DIR,
    KUBERNETES_DIR,
    KUSTOMIZATIONS,
    Rendered,
    crds_dir,
    render,
    run_checkov,
)


@pytest.fixture(scope="session")
def rendered_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rendered")


@pytest.fixture(scope="session")
def rendered(rendered_dir: Path) -> dict[str, Rendered]:
    """Every kustomization rendered once, by the names in KUSTOMIZATIONS."""
    return {
        name: render(KUBERNETES_DIR / relative, rendered_dir / f"{name}.yaml")
        for name, relative in KUSTOMIZATIONS.items()
    }


@pytest.fixture(scope="session")
def crd_folder() -> Path:
    return crds_dir()


@pytest.fixture(scope="session")
def checkov_reports(rendered: dict[str, Rendered]) -> list[dict[str, Any]]:
    """One checkov run over every rendered kustomization and the Dockerfile."""
    files = [item.path for item in rendered.values()] + [DEPLOY_DIR / "Dockerfile"]
    return run_checkov(files, frameworks="kubernetes,dockerfile")
