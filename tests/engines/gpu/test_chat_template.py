"""Chat templates render as transformers' `apply_chat_template` renders them (CPU only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from turnout.engines.gpu import ChatTemplate
from turnout.engines.gpu.chat_template import cached_chat_template
from turnout.errors import ConfigError, ModelNotFound, UserError

# Meta-Llama-3-8B-Instruct's template, verbatim.
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)
HELLO = [{"role": "user", "content": "Hello"}]
NAMED = [{"name": "tool_use", "template": "tools"}, {"name": "default", "template": "plain"}]


def model_dir(tmp_path: Path, template: Any = None, **config: Any) -> Path:
    """A model directory holding only a tokenizer_config.json."""
    if template is not None:
        config["chat_template"] = template
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return tmp_path


def render(
    tmp_path: Path, template: Any, messages: list[dict[str, Any]] = HELLO, **config: Any
) -> str:
    return ChatTemplate.from_model_dir(model_dir(tmp_path, template, **config)).render(messages)


def test_llama3_template_renders_as_transformers_does(tmp_path: Path) -> None:
    messages = [{"role": "user", "content": " Hi "}]
    text = render(tmp_path, LLAMA3, messages, bos_token="<|begin_of_text|>")
    assert text == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_block_tags_on_their_own_lines_leave_no_whitespace(tmp_path: Path) -> None:
    template = (
        "{% for message in messages %}\n"
        "    {% if message['role'] == 'user' %}\n"
        "[{{ message['content'] }}]\n"
        "    {% endif %}\n"
        "{% endfor %}\n"
    )
    assert render(tmp_path, template, HELLO * 2) == "[Hello]\n[Hello]\n"


def test_special_tokens_given_as_added_token_dicts_are_rendered(tmp_path: Path) -> None:
    text = render(
        tmp_path, "{{ bos_token }}|{{ eos_token }}",
        bos_token={"content": "<s>", "special": True}, eos_token={"content": "</s>"},
    )
    assert text == "<s>|</s>"


def test_special_tokens_the_config_lacks_are_undefined(tmp_path: Path) -> None:
    assert render(tmp_path, "{{ 'no bos' if bos_token is undefined else 'bos' }}") == "no bos"


def test_named_templates_use_the_default_one(tmp_path: Path) -> None:
    assert render(tmp_path, NAMED) == "plain"


def test_a_named_template_can_be_chosen(tmp_path: Path) -> None:
    template = ChatTemplate.from_model_dir(model_dir(tmp_path, NAMED), name="tool_use")
    assert template.render(HELLO) == "tools"


def test_named_templates_without_a_default_are_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no chat template named 'default'.*tool_use"):
        ChatTemplate.from_model_dir(model_dir(tmp_path, [{"name": "tool_use", "template": "x"}]))


def test_raise_exception_in_a_template_is_a_user_error_with_its_message(tmp_path: Path) -> None:
    template = (
        "{% if messages[0]['role'] != 'system' %}{{ raise_exception('System first!') }}{% endif %}"
    )
    with pytest.raises(UserError, match="refused these messages: System first!"):
        render(tmp_path, template)


def test_tojson_keeps_html_and_non_ascii_as_they_are(tmp_path: Path) -> None:
    messages = [{"role": "user", "content": "<b>é</b>"}]
    text = render(tmp_path, "{{ messages[0] | tojson }}", messages)
    assert text == '{"role": "user", "content": "<b>é</b>"}'


def test_tojson_accepts_the_json_dumps_options_templates_use(tmp_path: Path) -> None:
    text = render(tmp_path, "{{ {'b': 1, 'a': [1, 2]} | tojson(indent=1, sort_keys=True) }}")
    assert text == '{\n "a": [\n  1,\n  2\n ],\n "b": 1\n}'


def test_tools_are_none_and_a_generation_prompt_is_added_by_default(tmp_path: Path) -> None:
    template = "{{ tools is none }}|{{ add_generation_prompt }}"
    assert render(tmp_path, template) == "True|True"


def test_content_given_as_parts_is_reduced_to_its_text(tmp_path: Path) -> None:
    parts = [
        {"type": "text", "text": "Hel"},
        {"type": "image_url", "image_url": {}},
        {"type": "text", "text": "lo"},
    ]
    text = render(tmp_path, "{{ messages[0]['content'] }}", [{"role": "user", "content": parts}])
    assert text == "Hello"


def test_generation_blocks_render_their_body(tmp_path: Path) -> None:
    template = (
        "{% for m in messages %}{% generation %}<{{ m['content'] }}>{% endgeneration %}{% endfor %}"
    )
    assert render(tmp_path, template) == "<Hello>"


def test_loop_controls_and_strftime_now_are_available(tmp_path: Path) -> None:
    template = (
        "{% for m in messages %}{{ m['content'] }}{% break %}{% endfor %} "
        "{{ strftime_now('%Y') | length }}"
    )
    assert render(tmp_path, template, HELLO * 3) == "Hello 4"


def test_templates_cannot_modify_the_messages(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="refused"):
        render(tmp_path, "{% set _ = messages.append(1) %}")


def test_chat_template_jinja_file_overrides_the_tokenizer_config(tmp_path: Path) -> None:
    (tmp_path / "chat_template.jinja").write_text("from the file", encoding="utf-8")
    template = ChatTemplate.from_model_dir(model_dir(tmp_path, "from the config"))
    assert template.render(HELLO) == "from the file"
    assert not template.is_fallback


def test_a_model_without_a_template_falls_back_to_chatml(tmp_path: Path) -> None:
    template = ChatTemplate.from_model_dir(model_dir(tmp_path, eos_token="</s>"))
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert template.is_fallback
    assert template.render(messages) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_a_model_without_a_tokenizer_config_falls_back_to_chatml(tmp_path: Path) -> None:
    template = ChatTemplate.from_model_dir(tmp_path)
    assert template.is_fallback
    assert template.bos_token is None


def test_a_template_that_does_not_parse_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tokenizer_config.json is not valid Jinja"):
        ChatTemplate.from_model_dir(model_dir(tmp_path, "{% for m in messages %}"))


def test_a_missing_model_directory_is_model_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="does not exist"):
        ChatTemplate.from_model_dir(tmp_path / "nowhere")


# --- the engines' per-call read, cached while the files are unchanged


def test_the_cached_template_is_read_once_while_its_files_are_unchanged(tmp_path: Path) -> None:
    directory = model_dir(tmp_path, "one")
    assert cached_chat_template(directory) is cached_chat_template(directory)


def test_the_cached_template_follows_edits_to_its_files(tmp_path: Path) -> None:
    directory = model_dir(tmp_path, "one")
    assert cached_chat_template(directory).render(HELLO) == "one"
    model_dir(tmp_path, "two!")
    assert cached_chat_template(directory).render(HELLO) == "two!"
    (tmp_path / "chat_template.jinja").write_text("from the file", encoding="utf-8")
    assert cached_chat_template(directory).render(HELLO) == "from the file"


def test_the_cached_template_of_a_missing_directory_is_model_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="does not exist"):
        cached_chat_template(tmp_path / "nowhere")
