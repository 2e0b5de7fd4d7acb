"""What the run form needs: the config schema, the presets and the file picker."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from backend.api.deps import SessionDep, SettingsDep, require_api_token
from backend.api.routes.common import AUTH
from backend.services import files, runs
from cpt_contract.runconfig.presets import PRESET_LABELS, preset_config
from cpt_contract.runconfig.schema import RunConfig, deep_merge

router = APIRouter(tags=["meta"], dependencies=[Depends(require_api_token)], responses=AUTH)


class Preset(BaseModel):
    name: str
    label: str
    config: dict[str, Any]


class FoundPath(BaseModel):
    path: str
    label: str
    kind: files.FileKind
    #: Tokenizers: "extended" (a tokenizer job's output), "tokenizers" or "runs".
    group: str | None = None
    #: An extended tokenizer's base (the form marks one whose base is not the chosen model).
    base: str | None = None


@router.get("/schema/run-config", response_model=dict[str, Any])
def run_config_schema() -> dict[str, Any]:
    return RunConfig.model_json_schema()


def _complete(partial: dict[str, Any]) -> dict[str, Any]:
    """A preset with every default filled in, section by section.

    Sections are validated one by one because a preset may leave out what only the user can
    give (the dataset), which the whole-config check would reject.
    """
    out: dict[str, Any] = {}
    for name, info in RunConfig.model_fields.items():
        section = info.annotation
        assert isinstance(section, type)
        out[name] = section.model_validate(partial.get(name, {})).model_dump(mode="json")  # type: ignore[attr-defined]
    return out


@router.get("/presets", response_model=list[Preset])
def list_presets(settings: SettingsDep) -> list[Preset]:
    base = {"launch": {"queue": settings.queue}}
    return [
        Preset(
            name=name,
            label=label,
            config=_complete(deep_merge(base, preset_config(name, settings.demo_dir))),
        )
        for name, label in PRESET_LABELS.items()
    ]


@router.get("/files", response_model=list[FoundPath])
def find_files(
    settings: SettingsDep,
    session: SessionDep,
    kind: Annotated[files.FileKind, Query(description="What to look for")],
) -> list[FoundPath]:
    found = files.find(settings.roots, kind)
    if kind == "adapter":
        found = runs.label_adapters(session, found)
    if kind == "tokenizer":
        found = runs.label_tokenizers(session, found)
    return [FoundPath.model_validate(f) for f in found]
