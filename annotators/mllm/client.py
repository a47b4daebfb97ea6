"""A chat-completions client for any OpenAI-compatible server (vLLM, SGLang, a hosted model).

What it adds to the `openai` package: images as bounded base64 JPEG, an on-disk answer cache, a concurrency
limit shared by all threads of a run, and per-run accounting (requests, retries, tokens, failures). Retries
with exponential backoff on 429/5xx/timeouts are the `openai` client's own (`max_retries`); we count them.
The API key is read from an environment variable at construction and lives only inside the `openai` client:
it is never part of `MLLMConfig`, of any record, cache file or log line.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import openai
from PIL import Image

from annotators.mllm.cache import ResponseCache, cache_key

# GEdit-Bench (run_gedit_score.py) resizes both images to about 512x512 pixels of area before judging;
# the same bound keeps requests small and makes our scores comparable with the published protocol.
DEFAULT_MAX_AREA = 512 * 512


@dataclass
class MLLMConfig:
    base_url: str
    model: str
    # The *name* of the variable holding the key; the key itself is never stored here.
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 60.0
    max_retries: int = 3
    concurrency: int = 8
    max_area: int = DEFAULT_MAX_AREA
    jpeg_quality: int = 90
    temperature: float = 0.0
    max_tokens: int = 1024
    cache_dir: str | None = None

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Sampling:
    """Decoding settings of one request; None leaves the server's default (temperature: the config's).

    `top_k` is not an OpenAI parameter: it goes in the request's extra body, which vLLM and SGLang read.
    `seed` makes a sampled answer repeatable on servers that honour it (vLLM does, per request).
    """

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None

    def key_fields(self) -> dict[str, Any]:
        """The settings beyond temperature that change the answer, for the cache key (none: no field)."""
        fields = {"top_p": self.top_p, "top_k": self.top_k, "seed": self.seed}
        return {k: v for k, v in fields.items() if v is not None}


# One user turn as an ordered list of parts: text (str) and encoded images (bytes).
Part = str | bytes


@dataclass
class ChatAnswer:
    text: str | None
    error: str | None = None  # None when ok; else "timeout", "connection", "http_429", "http_500", ...
    cached: bool = False
    tokens_in: int = 0
    tokens_out: int = 0
    served_model: str | None = None  # the model name the server put in its answer (its version, if any)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Usage:
    """Counters for one run; thread-safe. Written into run.json under "judge" by the filter."""

    calls: int = 0  # chat() calls
    cache_hits: int = 0
    http_requests: int = 0  # every HTTP attempt, retries included
    http_status: Counter[str] = field(default_factory=Counter)
    tokens_in: int = 0
    tokens_out: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    request_seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: float) -> None:
        with self._lock:
            for name, value in deltas.items():
                setattr(self, name, getattr(self, name) + value)

    def count(self, counter: str, key: str) -> None:
        with self._lock:
            getattr(self, counter)[key] += 1

    def to_record(self) -> dict[str, Any]:
        with self._lock:
            return {
                "calls": self.calls,
                "cache_hits": self.cache_hits,
                "http_requests": self.http_requests,
                "retries": max(0, self.http_requests - (self.calls - self.cache_hits)),
                "http_status": dict(self.http_status),
                "tokens_in": self.tokens_in,
                "tokens_out": self.tokens_out,
                "failures": dict(self.failures),
                "request_seconds": round(self.request_seconds, 3),
            }


def _api_key(env_name: str) -> str:
    # Local vLLM/SGLang servers accept any key; "EMPTY" is their documented convention.
    return os.environ.get(env_name) or "EMPTY"


def served_model(base_url: str, api_key_env: str = "OPENAI_API_KEY", timeout_s: float = 30.0) -> str:
    """The one model a server serves (GET /models), for when none is named; vLLM serves exactly one."""
    with openai.OpenAI(api_key=_api_key(api_key_env), base_url=base_url, timeout=timeout_s) as client:
        try:
            names = [m.id for m in client.models.list()]
        except openai.APIError as err:
            raise ValueError(f"{base_url}: cannot list the served models ({type(err).__name__})") from None
    if len(names) != 1:
        raise ValueError(f"{base_url} serves {len(names)} models ({', '.join(names)}): name one")
    return names[0]


class BoundedJpeg(bytes):
    """RGB JPEG bytes known to hold at most `max_area` pixels, so the client sends them without a re-check
    (parsing a JPEG header costs about as much as a cache hit)."""

    max_area: int

    def __new__(cls, data: bytes, max_area: int) -> BoundedJpeg:
        obj = super().__new__(cls, data)
        obj.max_area = max_area
        return obj


def prepare_image(
    image: bytes | np.ndarray | Image.Image, max_area: int = DEFAULT_MAX_AREA, quality: int = 90
) -> BoundedJpeg:
    """Any image -> RGB JPEG bytes with width*height <= max_area, aspect ratio kept (floor, as GEdit)."""
    if isinstance(image, bytes):
        img = Image.open(io.BytesIO(image))
    elif isinstance(image, np.ndarray):
        img = Image.fromarray(image)
    else:
        img = image
    img = img.convert("RGB")
    w, h = img.size
    if w * h > max_area:
        scale = (max_area / (w * h)) ** 0.5
        img = img.resize((max(1, int(w * scale)), max(1, int(h * scale))), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return BoundedJpeg(buf.getvalue(), max_area)


class MLLMClient:
    """Thread-safe; share one instance between the worker threads of a run."""

    def __init__(self, config: MLLMConfig) -> None:
        self.config = config
        self.usage = Usage()
        self.cache = ResponseCache(config.cache_dir) if config.cache_dir else None
        self._slots = threading.BoundedSemaphore(config.concurrency)
        self._in_flight: dict[str, Future[ChatAnswer]] = {}
        self._in_flight_lock = threading.Lock()
        api_key = _api_key(config.api_key_env)
        http_client = openai.DefaultHttpx2Client(
            event_hooks={"request": [self._on_request], "response": [self._on_response]},
        )
        self._openai = openai.OpenAI(
            api_key=api_key,
            base_url=config.base_url,
            timeout=config.timeout_s,
            max_retries=config.max_retries,
            http_client=http_client,
        )

    def _on_request(self, request: Any) -> None:
        self.usage.add(http_requests=1)

    def _on_response(self, response: Any) -> None:
        self.usage.count("http_status", str(response.status_code))

    def close(self) -> None:
        self._openai.close()

    def __enter__(self) -> MLLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def chat(
        self,
        prompt: str,
        images: list[bytes],
        extra: dict[str, Any] | None = None,
        temperature: float | None = None,
    ) -> ChatAnswer:
        """One user turn: the prompt text, then the images (encoded image files, any format), in order.

        `extra` enters the cache key only (attempt number, candidate index) so that a deliberate second
        question with the same prompt is not answered from the cache. `temperature` overrides the config's
        (the instruction writer samples several candidates; the judge stays greedy).
        """
        return self.ask([prompt, *images], extra, Sampling(temperature=temperature))

    def ask(
        self, parts: Sequence[Part], extra: dict[str, Any] | None = None, sampling: Sampling | None = None
    ) -> ChatAnswer:
        """One user turn made of `parts` in order: text (str) and encoded images (bytes).

        Images that are not already a JPEG within `max_area` are re-encoded (`bounded`), so every caller
        sends bounded JPEGs; a caller that sends one image several times calls `bounded` once itself.
        """
        self.usage.add(calls=1)
        sampling = sampling or Sampling()
        parts = [p if isinstance(p, str) else self.bounded(p) for p in parts]
        temperature = self.config.temperature if sampling.temperature is None else sampling.temperature
        key = self._key(parts, {**(extra or {}), "t": temperature, **sampling.key_fields()})
        # One thread per key at a time: the same question on its way from another thread (the inverse pairs
        # of one photo share a target, so their PQ questions are identical) is waited for, not asked again.
        # The owner reads the cache itself, and leaves only once the answer is stored there, so no later
        # thread can miss both the cache and the owner.
        with self._in_flight_lock:
            pending = self._in_flight.get(key)
            asking = pending is None
            if asking:
                pending = self._in_flight[key] = Future()
        if not asking:
            answer = pending.result()
            self.usage.add(cache_hits=1)
            return replace(answer, cached=answer.ok)
        try:
            sampling = replace(sampling, temperature=temperature)
            answer = self._from_cache(key) or self._request(key, parts, sampling)
            pending.set_result(answer)
            return answer
        except BaseException as err:
            pending.set_exception(err)
            raise
        finally:
            with self._in_flight_lock:
                del self._in_flight[key]

    def _key(self, parts: list[Part], extra: dict[str, Any]) -> str:
        texts = [p for p in parts if isinstance(p, str)]
        image_hashes = [hashlib.sha256(p).hexdigest() for p in parts if not isinstance(p, str)]
        layout = "".join("t" if isinstance(p, str) else "i" for p in parts)
        if layout != "t" + "i" * len(image_hashes):
            # Any order other than one text then the images: the order is part of the question. The plain
            # layout keeps the key it always had, so existing caches stay valid.
            extra = {**extra, "layout": layout}
        return cache_key(self.config.model, "\n".join(texts), image_hashes, extra)

    def _from_cache(self, key: str) -> ChatAnswer | None:
        if self.cache is None or (hit := self.cache.get(key)) is None:
            return None
        self.usage.add(cache_hits=1)
        return ChatAnswer(
            text=hit["text"],
            cached=True,
            tokens_in=hit["tokens_in"],
            tokens_out=hit["tokens_out"],
            served_model=hit.get("served_model"),
        )

    def _request(self, key: str, parts: list[Part], sampling: Sampling) -> ChatAnswer:
        content: list[dict[str, Any]] = []
        for part in parts:
            if isinstance(part, str):
                content.append({"type": "text", "text": part})
            else:
                b64 = base64.b64encode(part).decode("ascii")
                content.append({"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{b64}"}})
        options: dict[str, Any] = {"temperature": sampling.temperature}
        if sampling.top_p is not None:
            options["top_p"] = sampling.top_p
        if sampling.seed is not None:
            options["seed"] = sampling.seed
        if sampling.top_k is not None:
            options["extra_body"] = {"top_k": sampling.top_k}
        start = time.perf_counter()
        try:
            with self._slots:
                completion = self._openai.chat.completions.create(
                    model=self.config.model,
                    messages=[{"role": "user", "content": content}],
                    max_tokens=self.config.max_tokens,
                    **options,
                )
        except openai.APITimeoutError:
            return self._failed("timeout", start)
        except openai.APIConnectionError:
            return self._failed("connection", start)
        except openai.APIStatusError as err:
            return self._failed(f"http_{err.status_code}", start)
        self.usage.add(request_seconds=time.perf_counter() - start)
        text = completion.choices[0].message.content if completion.choices else None
        if text is None:
            # An empty choice list or a null content is an answer we cannot use, not a transport error.
            text = ""
        tokens_in = completion.usage.prompt_tokens if completion.usage else 0
        tokens_out = completion.usage.completion_tokens if completion.usage else 0
        self.usage.add(tokens_in=tokens_in, tokens_out=tokens_out)
        served = completion.model or None
        if self.cache is not None:
            stored = {"model": self.config.model, "text": text, "served_model": served}
            self.cache.put(key, stored | {"tokens_in": tokens_in, "tokens_out": tokens_out})
        return ChatAnswer(text=text, tokens_in=tokens_in, tokens_out=tokens_out, served_model=served)

    def bounded(self, image: bytes) -> BoundedJpeg:
        """The image as this client sends it: an RGB JPEG within `max_area` (the same bytes if it is one)."""
        max_area = self.config.max_area
        if isinstance(image, BoundedJpeg) and image.max_area <= max_area:
            return image
        # PIL reads only the header here: checking costs tens of microseconds, re-encoding milliseconds.
        with Image.open(io.BytesIO(image)) as img:
            if img.format == "JPEG" and img.mode == "RGB" and img.width * img.height <= max_area:
                return BoundedJpeg(image, max_area)
        return prepare_image(image, max_area, self.config.jpeg_quality)

    def _failed(self, reason: str, start: float) -> ChatAnswer:
        self.usage.add(request_seconds=time.perf_counter() - start)
        self.usage.count("failures", reason)
        return ChatAnswer(text=None, error=reason)
