"""Multi-label zero-shot tags: each tag is scored on its own against a neutral prompt.

For an image embedding x and unit text embeddings t_tag (the prompt "an image of TAG") and
t_neutral (the prompt "an image"), a tag's probability is a two-way softmax between the two
prompts at the model's logit scale s:

    p(tag) = exp(s * x.t_tag) / (exp(s * x.t_tag) + exp(s * x.t_neutral)) = sigmoid(s * (x.t_tag - x.t_neutral))

So a tag scores above 0.5 when it describes the image better than the neutral prompt does.
Each tag's probability is independent of the other tags, so several tags can apply at once and
adding or removing tags from the vocabulary leaves the scores of the others unchanged.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch

TAG_PROMPT_TEMPLATE = "an image of {}"
NEUTRAL_PROMPT = "an image"
TEXT_BATCH_SIZE = 256
MAX_CACHED_VOCABULARIES = 8

_text_embedding_cache: OrderedDict[tuple, torch.Tensor] = OrderedDict()


def tag_text_embeddings(
    model: torch.nn.Module,
    tokenizer: Callable,
    tags: list[str],
    *,
    model_key: str,
    device: str,
) -> torch.Tensor:
    """Return unit text embeddings, shape (len(tags) + 1, dim): one per tag, then the neutral prompt.

    Results are cached in memory per model, device and vocabulary, so repeated captioning runs
    in one process encode the vocabulary once.
    """
    prompts = [TAG_PROMPT_TEMPLATE.format(tag) for tag in tags] + [NEUTRAL_PROMPT]
    cache_key = (model_key, device, tuple(prompts))
    cached = _text_embedding_cache.get(cache_key)
    if cached is not None:
        _text_embedding_cache.move_to_end(cache_key)
        return cached
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(prompts), TEXT_BATCH_SIZE):
            tokens = tokenizer(prompts[start:start + TEXT_BATCH_SIZE]).to(device)
            chunks.append(model.encode_text(tokens, normalize=True).float())
    embeddings = torch.cat(chunks)
    _text_embedding_cache[cache_key] = embeddings
    while len(_text_embedding_cache) > MAX_CACHED_VOCABULARIES:
        _text_embedding_cache.popitem(last=False)
    return embeddings


def tag_probabilities(
    image_embeddings: torch.Tensor, text_embeddings: torch.Tensor, *, logit_scale: float
) -> torch.Tensor:
    """Return p(tag) for each image and tag, shape (images, tags), from unit embeddings.

    ``text_embeddings`` is the output of tag_text_embeddings: the tags, then the neutral prompt.
    """
    similarities = image_embeddings.float() @ text_embeddings.T
    tag_similarities = similarities[:, :-1]
    neutral_similarity = similarities[:, -1:]
    return torch.sigmoid(logit_scale * (tag_similarities - neutral_similarity))


def select_tags(
    probabilities: torch.Tensor, tags: list[str], *, top_k: int, threshold: float
) -> list[list[tuple[str, float]]]:
    """Return, per image, at most ``top_k`` (tag, probability) pairs with probability >= threshold, best first.

    Ties keep vocabulary order, so the result does not depend on the batch the image was in.
    """
    ordered, order = torch.sort(probabilities.cpu(), dim=1, descending=True, stable=True)
    selected = []
    for row_values, row_order in zip(ordered.tolist(), order.tolist()):
        pairs = [(tags[index], value) for value, index in zip(row_values, row_order) if value >= threshold]
        selected.append(pairs[:top_k])
    return selected


def model_logit_scale(model: torch.nn.Module) -> float:
    """Return the model's learned logit scale, exp(logit_scale), as open_clip stores it."""
    return float(model.logit_scale.detach().exp().item())
