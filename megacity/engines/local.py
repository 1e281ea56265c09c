"""The settings of in-process engines, read from a topology node's `options`."""

from __future__ import annotations

from megacity.config.topology import Engine, Node
from megacity.engines.face import FaceEngineConfig
from megacity.engines.image import ImageEngineConfig
from megacity.engines.pose import PoseEngineConfig
from megacity.engines.speech import SpeechEngineConfig
from megacity.engines.tts import TTSEngineConfig

EngineConfig = (
    SpeechEngineConfig | PoseEngineConfig | ImageEngineConfig | TTSEngineConfig | FaceEngineConfig
)


def engine_config(node: Node) -> EngineConfig | None:
    """The engine config of an in-process node (None for engines that have none yet).

    ValueError names the node and the bad option: ``nodes.pose-local.options: ...``.
    """
    try:
        if node.engine is Engine.SPEECH:
            return SpeechEngineConfig.from_options(node.options)
        if node.engine is Engine.POSE:
            return PoseEngineConfig.from_options(
                {"max_concurrency": node.max_concurrency, **node.options}
            )
        if node.engine is Engine.IMAGE:
            return ImageEngineConfig.from_options(
                {"max_concurrency": node.max_concurrency, **node.options}
            )
        if node.engine is Engine.TTS:
            return TTSEngineConfig.from_options(
                {"max_concurrency": node.max_concurrency, **node.options}
            )
        if node.engine is Engine.FACE:
            return FaceEngineConfig.from_options(
                {"max_concurrency": node.max_concurrency, **node.options}
            )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"nodes.{node.name}.options: {exc}") from None
    return None
