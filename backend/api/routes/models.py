"""Models (``/api/models``): every model under the allowed roots, described from its files."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from backend.api.deps import SettingsDep, require_api_token
from backend.api.routes.common import AUTH
from backend.services import models

router = APIRouter(tags=["models"], dependencies=[Depends(require_api_token)], responses=AUTH)


@router.get("/models", response_model=list[models.ModelInfo])
def list_models(settings: SettingsDep) -> list[models.ModelInfo]:
    return models.list_models(settings)
