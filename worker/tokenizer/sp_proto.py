"""SentencePiece ``ModelProto`` helpers (the protobuf that ``tokenizer.model`` holds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from worker.tokenizer.errors import TokenizerInputError

# ModelProto.SentencePiece.Type
NORMAL = 1
UNKNOWN = 2
CONTROL = 3
USER_DEFINED = 4
UNUSED = 5
BYTE = 6

# TrainerSpec.ModelType
MODEL_TYPE_NAMES = {1: "unigram", 2: "bpe", 3: "word", 4: "char"}


def new_proto() -> Any:
    from sentencepiece import sentencepiece_model_pb2 as pb

    return pb.ModelProto()  # type: ignore[attr-defined]


def new_piece(piece: str, score: float, kind: int = NORMAL) -> Any:
    from sentencepiece import sentencepiece_model_pb2 as pb

    out = pb.ModelProto.SentencePiece()  # type: ignore[attr-defined]
    out.piece = piece
    out.score = score
    out.type = kind
    return out


def load_proto(data: bytes) -> Any:
    proto = new_proto()
    proto.ParseFromString(data)
    return proto


def read_model_file(path: Path, argument: str) -> Any:
    """Parse a ``.model`` file; anything else is an error naming ``argument``."""
    from google.protobuf.message import DecodeError

    try:
        proto = load_proto(Path(path).read_bytes())
    except (DecodeError, OSError) as exc:
        raise TokenizerInputError(
            argument, f"{path} is not a SentencePiece model ({exc})"
        ) from None
    if not proto.pieces:
        raise TokenizerInputError(argument, f"{path} is not a SentencePiece model (no pieces)")
    return proto


def model_type_name(proto: Any) -> str:
    return MODEL_TYPE_NAMES.get(int(proto.trainer_spec.model_type), "unigram")
