"""Stop conditions come from the model directory; the scanner cuts streams at stop strings."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from turnout.engines.gpu import Scan, StopConditions, StopScanner, stop_conditions
from turnout.engines.gpu.stops import finish_reason, job_stop_conditions
from turnout.engines.gpu.worker import GenerationJob


def write(directory: Path, name: str, data: dict[str, Any]) -> None:
    (directory / name).write_text(json.dumps(data), encoding="utf-8")


def tokenizer_json(added: dict[str, int] | None = None, vocab: Any = None) -> dict[str, Any]:
    added_tokens = [{"id": i, "content": c, "special": True} for c, i in (added or {}).items()]
    return {"added_tokens": added_tokens, "model": {"type": "BPE", "vocab": vocab or {}}}


def stream(strings: list[str], chunks: list[str]) -> tuple[str, bool]:
    """Feed `chunks` through a scanner; what a caller would emit, and whether it stopped."""
    scanner = StopScanner(strings)
    emitted = []
    for chunk in chunks:
        scan = scanner.feed(chunk)
        emitted.append(scan.text)
        if scan.stopped:
            return "".join(emitted), True
    return "".join(emitted) + scanner.flush(), False


# --- stop conditions from a model directory


def test_eos_ids_come_from_config_and_generation_config(tmp_path: Path) -> None:
    write(tmp_path, "config.json", {"eos_token_id": 2})
    write(tmp_path, "generation_config.json", {"eos_token_id": [2, 7, 9]})
    assert stop_conditions(tmp_path).token_ids == {2, 7, 9}


def test_end_of_turn_marker_in_the_template_becomes_a_token_id_and_a_string(tmp_path: Path) -> None:
    write(tmp_path, "tokenizer_config.json", {"chat_template": "{{ '<|eot_id|>' }}"})
    write(tmp_path, "tokenizer.json", tokenizer_json({"<|eot_id|>": 128009}))
    stops = stop_conditions(tmp_path)
    assert stops.token_ids == {128009}
    assert stops.strings == ["<|eot_id|>"]


def test_end_of_turn_marker_among_added_tokens_counts_without_the_template(tmp_path: Path) -> None:
    write(tmp_path, "tokenizer_config.json", {"chat_template": "plain"})
    write(tmp_path, "tokenizer.json", tokenizer_json({"<|endoftext|>": 50256, "<|other|>": 3}))
    assert stop_conditions(tmp_path).token_ids == {50256}


def test_eos_token_of_the_tokenizer_config_is_found_in_the_vocabulary(tmp_path: Path) -> None:
    config = {"chat_template": "x", "eos_token": {"content": "<eos>"}}
    write(tmp_path, "tokenizer_config.json", config)
    write(tmp_path, "tokenizer.json", tokenizer_json(vocab={"<eos>": 1, "a": 2}))
    stops = stop_conditions(tmp_path)
    assert stops.token_ids == {1}
    assert stops.strings == ["<eos>"]


def test_unigram_vocabularies_are_searched_by_position(tmp_path: Path) -> None:
    write(tmp_path, "tokenizer_config.json", {"chat_template": "{{ '</s>' }}"})
    write(tmp_path, "tokenizer.json", tokenizer_json(vocab=[["<unk>", 0.0], ["</s>", 0.0]]))
    assert stop_conditions(tmp_path).token_ids == {1}


def test_a_marker_that_is_not_one_token_stays_a_string_only(tmp_path: Path) -> None:
    write(tmp_path, "tokenizer_config.json", {"chat_template": "{{ '<end_of_turn>' }}"})
    write(tmp_path, "tokenizer.json", tokenizer_json(vocab={"<": 1, "end": 2}))
    stops = stop_conditions(tmp_path)
    assert stops.token_ids == set()
    assert stops.strings == ["<end_of_turn>"]


def test_the_chatml_fallback_stops_at_im_end(tmp_path: Path) -> None:
    assert stop_conditions(tmp_path).strings == ["<|im_end|>"]


def test_callers_stop_strings_follow_the_models_without_repeats_or_empties(tmp_path: Path) -> None:
    stops = stop_conditions(tmp_path, stop=["\n\n", "", "<|im_end|>", "END"])
    assert stops.strings == ["<|im_end|>", "\n\n", "END"]


def test_with_strings_adds_a_requests_stops_and_leaves_the_original_alone() -> None:
    model = StopConditions({2}, ["<|im_end|>"])
    request = model.with_strings(["STOP"])
    assert request == StopConditions({2}, ["<|im_end|>", "STOP"])
    assert model.strings == ["<|im_end|>"]


# --- the streaming scanner


def test_text_without_stop_strings_passes_through_at_once() -> None:
    assert StopScanner(["<|im_end|>"]).feed("hello world") == Scan("hello world", False)


def test_a_possible_start_of_a_stop_string_is_held_back() -> None:
    scanner = StopScanner(["<|im_end|>"])
    assert scanner.feed("answer <|im") == Scan("answer ", False)


def test_held_back_text_is_released_when_it_turns_out_not_to_be_a_stop() -> None:
    scanner = StopScanner(["<|im_end|>"])
    scanner.feed("a <|im")
    assert scanner.feed("_start|>") == Scan("<|im_start|>", False)


def test_a_stop_string_split_across_chunks_stops_and_is_not_emitted() -> None:
    assert stream(["<|im_end|>"], ["Hi", " there<", "|im_", "end|", ">more"]) == ("Hi there", True)


def test_text_after_a_stop_string_in_the_same_chunk_is_dropped() -> None:
    assert stream(["STOP"], ["one STOP two"]) == ("one ", True)


def test_a_stop_string_at_the_very_start_emits_nothing() -> None:
    assert stream(["<|im_end|>"], ["<|im_end|>"]) == ("", True)


def test_the_earliest_of_several_stop_strings_wins() -> None:
    scanner = StopScanner(["world", "lo"])
    assert scanner.feed("hello world") == Scan("hel", True)
    assert scanner.matched == "lo"


def test_a_false_start_followed_by_a_real_stop_keeps_the_false_start() -> None:
    assert stream(["<|im_end|>"], ["<", "<", "|im_end|>"]) == ("<", True)


def test_repeated_prefix_characters_are_handled() -> None:
    assert stream(["aab"], ["a", "a", "a", "b"]) == ("a", True)


def test_flush_returns_the_held_back_text_when_generation_ends_otherwise() -> None:
    assert stream(["<|im_end|>"], ["the end <|"]) == ("the end <|", False)


def test_feeding_after_a_stop_yields_nothing() -> None:
    scanner = StopScanner(["."])
    scanner.feed("Done.")
    assert scanner.feed("more text") == Scan("", True)
    assert scanner.flush() == ""


def test_without_stop_strings_nothing_is_ever_held_back() -> None:
    scanner = StopScanner([])
    assert scanner.holdback == 0
    assert scanner.feed("<|im") == Scan("<|im", False)


@pytest.mark.parametrize(
    "text", ["ab<|im_end|>cd", "<|im_<|im_end|>", "xx\n\nyy<|im_end|>", "<|im_en"]
)
def test_every_way_of_splitting_a_stream_gives_the_same_result(text: str) -> None:
    strings = ["<|im_end|>", "\n\n"]
    positions = [i for s in strings if s in text for i in [text.find(s)]]
    expected = (text[: min(positions)], True) if positions else (text, False)
    for cuts in itertools.combinations(range(1, len(text)), 3):
        chunks = [text[a:b] for a, b in zip((0, *cuts), (*cuts, len(text)))]
        assert stream(strings, chunks) == expected, chunks


# --- an exllama job's stop conditions and finish reason


def test_stop_conditions_are_the_models_and_the_jobs_ids_then_strings() -> None:
    stops = StopConditions({7, 2}, ["<|im_end|>"])
    job = GenerationJob(prompt="p", stop_strings=["END", "<|im_end|>", ""], stop_token_ids=[9, 2])
    assert job_stop_conditions(stops, job) == [2, 7, 9, "<|im_end|>", "END"]
    assert stops == StopConditions({7, 2}, ["<|im_end|>"])  # the model's conditions are left alone


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("stop_token", "stop"), ("stop_string", "stop"), ("end_filter", "stop"), ("max_new_tokens", "length"),
     ("something_new", "stop")],
)
def test_finish_reasons(reason: str, expected: str) -> None:
    assert finish_reason({"eos_reason": reason}) == expected
