"""gateway.settings: the schema's defaults and rules, and the loader's YAML, env and error reporting."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.cli.config_cmd import json_schema
from gateway.metering.stream_usage import providers_to_ask
from gateway.settings import ConfigError, ProviderType, Settings, load_settings, parse_settings
from gateway.settings.schema import RESERVED_MOUNTS

WriteConfig = Callable[[str], Path]


@pytest.fixture
def write_config(tmp_path: Path) -> WriteConfig:
    def write(text: str) -> Path:
        path = tmp_path / "gateway.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


def problems_of(error: pytest.ExceptionInfo[ConfigError]) -> dict[str, str]:
    return {problem.path: problem.message for problem in error.value.problems}


# -- defaults -----------------------------------------------------------------------------------------


def test_no_file_means_every_default() -> None:
    settings = load_settings(None)

    assert settings == Settings()
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8080)
    assert settings.server.max_body_bytes == 10 * 1024 * 1024
    assert settings.auth.key_cache_ttl_seconds == 5.0
    assert settings.credentials.cache_ttl_seconds == 30.0
    assert settings.master_key.env == "TOLLGATE_MASTER_KEY"
    assert settings.master_key.file is None
    assert settings.providers == {}


def test_idle_connections_are_kept_past_the_sdks_five_seconds_and_a_zero_keep_alive_is_refused() -> None:
    assert Settings().server.keep_alive_seconds == 75  # as nginx; the SDKs (httpx) expire theirs at 5 s
    assert Settings().server.body_read_timeout_seconds == 60

    with pytest.raises(ConfigError) as error:
        parse_settings({"server": {"keep_alive_seconds": 0}})

    assert set(problems_of(error)) == {"server.keep_alive_seconds"}


def test_stale_if_error_defaults_to_five_minutes_and_zero_turns_it_off() -> None:
    settings = Settings()
    off = parse_settings(
        {"auth": {"stale_if_error_seconds": 0}, "credentials": {"stale_if_error_seconds": 0}}
    )

    assert (settings.auth.stale_if_error_seconds, settings.credentials.stale_if_error_seconds) == (300, 300)
    assert (off.auth.stale_if_error_seconds, off.credentials.stale_if_error_seconds) == (0, 0)


def test_a_negative_stale_if_error_is_refused_in_either_section() -> None:
    with pytest.raises(ConfigError) as error:
        parse_settings(
            {"auth": {"stale_if_error_seconds": -1}, "credentials": {"stale_if_error_seconds": "soon"}},
            "gateway.yaml",
        )

    assert set(problems_of(error)) == {"auth.stale_if_error_seconds", "credentials.stale_if_error_seconds"}


def test_the_stale_if_error_settings_are_described_in_the_schema() -> None:
    schema = json_schema()["$defs"]

    for section in ("AuthSettings", "CredentialCacheSettings"):
        description = schema[section]["properties"]["stale_if_error_seconds"]["description"]
        assert "cannot be reached" in description and "0 turns this off" in description


def test_the_schema_lets_an_editor_flag_a_provider_name_the_gateway_would_refuse() -> None:
    providers = json_schema()["properties"]["providers"]

    assert providers["additionalProperties"] is False
    [pattern] = providers["patternProperties"]
    assert re.fullmatch(pattern.strip("^$"), "openai-eu")
    assert not re.fullmatch(pattern.strip("^$"), "OpenAI EU")


def test_an_empty_file_means_every_default(write_config: WriteConfig) -> None:
    assert load_settings(write_config(""), environ={}) == Settings()


def test_a_section_given_in_part_keeps_the_defaults_of_the_rest(write_config: WriteConfig) -> None:
    settings = load_settings(write_config("server:\n  port: 9000\n"), environ={})

    assert settings.server.port == 9000
    assert settings.server.host == "127.0.0.1"
    assert settings.database == Settings().database


def test_a_provider_gets_default_timeouts_and_credential_mode() -> None:
    provider = parse_settings({"providers": {"openai": {"type": "openai"}}}).providers["openai"]

    assert provider.type is ProviderType.OPENAI
    assert provider.base_url is None
    assert provider.credential == "required"
    assert (provider.timeouts.connect, provider.timeouts.read, provider.timeouts.total) == (10, 300, 900)


def test_a_total_timeout_below_the_connect_timeout_is_refused() -> None:
    """A call still waiting for a connection when `total` ran out would never get its `connect` time."""
    with pytest.raises(ConfigError) as error:
        parse_settings({"providers": {"up": {"type": "openai", "timeouts": {"connect": 5, "total": 1}}}})

    assert problems_of(error) == {
        "providers.up.timeouts": "total (1) must be at least connect (5), which it would otherwise cut short"
    }


def test_a_total_timeout_equal_to_connect_or_below_read_is_accepted() -> None:
    """A `read` longer than `total` never comes into play, but `total: 120` alone is a sensible setting."""
    settings = parse_settings(
        {
            "providers": {
                "a": {"type": "openai", "timeouts": {"connect": 5, "total": 5}},
                "b": {"type": "openai", "timeouts": {"total": 120}},
            }
        }
    )

    assert settings.providers["a"].timeouts.total == 5
    assert settings.providers["b"].timeouts.read == 300


# -- errors: every one, each with file and key path ---------------------------------------------------


def test_every_problem_is_reported_at_once_with_file_and_key_path(write_config: WriteConfig) -> None:
    path = write_config(
        "server:\n  port: not-a-number\n  workers: 0\nproviders:\n  openai:\n    type: nope\n"
    )

    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})

    assert set(problems_of(error)) == {"server.port", "server.workers", "providers.openai.type"}
    lines = str(error.value).splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"{path}: ") for line in lines)
    assert f"{path}: server.port: " in str(error.value)
    assert f"{path}: providers.openai.type: " in str(error.value)


@pytest.mark.parametrize(
    ("document", "key_path"),
    [
        ({"servre": {}}, "servre"),
        ({"server": {"prot": 1}}, "server.prot"),
        ({"providers": {"openai": {"type": "openai", "api_key": "sk"}}}, "providers.openai.api_key"),
        (
            {"providers": {"openai": {"type": "openai", "timeouts": {"conect": 1}}}},
            "providers.openai.timeouts.conect",
        ),
    ],
)
def test_an_unknown_key_is_an_error_not_ignored(document: dict[str, object], key_path: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_settings(document, "gateway.yaml")

    assert problems_of(error) == {key_path: "unknown key (not part of the schema)"}
    assert f"gateway.yaml: {key_path}: unknown key" in str(error.value)


def test_a_top_level_that_is_not_a_mapping_is_an_error(write_config: WriteConfig) -> None:
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_settings(write_config("- server\n- providers\n"), environ={})


def test_a_file_that_cannot_be_read_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"

    with pytest.raises(ConfigError, match=r"absent\.yaml: cannot read"):
        load_settings(missing, environ={})


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_bytes(b"server:\n  host: \xff\xfe\n")

    with pytest.raises(ConfigError, match="cannot read: not UTF-8 text"):
        load_settings(path, environ={})


# -- YAML ---------------------------------------------------------------------------------------------


def test_invalid_yaml_is_reported_with_line_and_column(write_config: WriteConfig) -> None:
    path = write_config("server:\n  port: 8080\n  host: [127.0.0.1\n")

    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})

    assert str(error.value).startswith(f"{path}: invalid YAML: line 4, column 1: ")


def test_a_bad_indentation_points_at_its_line(write_config: WriteConfig) -> None:
    path = write_config("server:\n  port: 8080\n host: x\n")

    with pytest.raises(ConfigError, match=r"invalid YAML: line 3, column 2: "):
        load_settings(path, environ={})


def test_a_python_object_tag_is_an_error_and_is_never_executed(
    write_config: WriteConfig, tmp_path: Path
) -> None:
    marker = tmp_path / "executed"
    path = write_config(f"server: !!python/object/apply:os.mkdir ['{marker}']\n")

    with pytest.raises(ConfigError, match=r"invalid YAML: line 1, column 9: .*python/object"):
        load_settings(path, environ={})

    assert not marker.exists()


def test_a_key_given_twice_is_an_error_not_the_last_one_kept(write_config: WriteConfig) -> None:
    path = write_config(
        "providers:\n  openai: {type: openai}\n"
        "providers:\n  local: {type: openai-compatible, base_url: 'http://x:1/v1'}\n"
    )

    with pytest.raises(
        ConfigError, match=r"invalid YAML: line 3, column 1: the key 'providers' is given twice"
    ):
        load_settings(path, environ={})


def test_a_yaml_boolean_is_not_taken_for_a_number(write_config: WriteConfig) -> None:
    path = write_config(
        "server: {port: yes, workers: on}\n"
        "metering: {flush_interval_seconds: true}\n"
        "providers:\n  openai: {type: openai, timeouts: {read: no}}\n"
    )

    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})

    assert problems_of(error) == {
        "server.port": "a number is expected, not the boolean true",
        "server.workers": "a number is expected, not the boolean true",
        "metering.flush_interval_seconds": "a number is expected, not the boolean true",
        "providers.openai.timeouts.read": "a number is expected, not the boolean false",
    }


def test_an_alias_that_contains_itself_is_an_error_not_a_crash(write_config: WriteConfig) -> None:
    path = write_config("server: &loop [*loop]\n")

    with pytest.raises(ConfigError, match="an alias refers to itself"):
        load_settings(path, environ={})


def test_the_shipped_configuration_holds_objects_where_its_schema_wants_them() -> None:
    settings = load_settings(Path(__file__).resolve().parents[2] / "config" / "gateway.yaml", environ={})

    assert settings.admin.token_sha256 is None  # `admin: {}`, not null: the JSON Schema wants an object


# -- environment interpolation ------------------------------------------------------------------------


def test_a_variable_reference_takes_the_environment_value(write_config: WriteConfig) -> None:
    path = write_config("server:\n  host: ${HOST}\n  port: ${PORT}\n")

    settings = load_settings(path, environ={"HOST": "10.0.0.5", "PORT": "9000"})

    assert settings.server.host == "10.0.0.5"
    assert settings.server.port == 9000


def test_a_default_stands_in_for_a_variable_unset_or_empty_as_in_the_shell(write_config: WriteConfig) -> None:
    path = write_config("server:\n  host: ${HOST:-127.0.0.1}\n")

    assert load_settings(path, environ={"HOST": ""}).server.host == "127.0.0.1"
    assert load_settings(path, environ={}).server.host == "127.0.0.1"
    assert load_settings(path, environ={"HOST": "10.0.0.5"}).server.host == "10.0.0.5"


def test_a_reference_inside_a_longer_string_is_replaced_in_place(write_config: WriteConfig) -> None:
    path = write_config("database:\n  url: postgresql://${DB_USER}@db:5432/${DB_NAME}\n")

    settings = load_settings(path, environ={"DB_USER": "gate", "DB_NAME": "tollgate"})

    assert settings.database.url == "postgresql://gate@db:5432/tollgate"


def test_the_default_is_used_only_when_the_variable_is_unset(write_config: WriteConfig) -> None:
    path = write_config("server:\n  host: ${HOST:-127.0.0.2}\n  port: ${PORT:-9001}\n")

    settings = load_settings(path, environ={"PORT": "9002"})

    assert settings.server.host == "127.0.0.2"
    assert settings.server.port == 9002


def test_an_empty_default_is_allowed(write_config: WriteConfig) -> None:
    path = write_config("database:\n  url: sqlite:///data${SUFFIX:-}.db\n")

    assert load_settings(path, environ={}).database.url == "sqlite:///data.db"


def test_a_double_dollar_is_a_literal_dollar_and_escapes_a_reference(write_config: WriteConfig) -> None:
    path = write_config("database:\n  url: postgresql://u:pa$$word@h/db?x=$${NOT_A_VAR}\n")

    settings = load_settings(path, environ={"NOT_A_VAR": "substituted"})

    assert settings.database.url == "postgresql://u:pa$word@h/db?x=${NOT_A_VAR}"


def test_a_lone_dollar_is_left_as_it_is(write_config: WriteConfig) -> None:
    path = write_config("database:\n  url: postgresql://u:pa$word@h/db\n")

    assert load_settings(path, environ={}).database.url == "postgresql://u:pa$word@h/db"


def test_a_missing_variable_is_named_with_its_key_path(write_config: WriteConfig) -> None:
    path = write_config(
        "providers:\n  local:\n    type: openai-compatible\n    base_url: http://${LLM_HOST}/v1\n"
    )

    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})

    assert problems_of(error) == {"providers.local.base_url": "environment variable LLM_HOST is not set"}
    assert str(error.value) == (f"{path}: providers.local.base_url: environment variable LLM_HOST is not set")


def test_every_missing_variable_is_reported(write_config: WriteConfig) -> None:
    path = write_config("server:\n  host: ${HOST}\ndatabase:\n  url: ${DATABASE_URL}\n")

    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})

    assert problems_of(error) == {
        "server.host": "environment variable HOST is not set",
        "database.url": "environment variable DATABASE_URL is not set",
    }


def test_a_missing_variable_and_a_schema_error_are_reported_together(write_config: WriteConfig) -> None:
    path = write_config("server:\n  host: ${HOST}\n  prot: 1\n")

    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})

    assert problems_of(error) == {
        "server.host": "environment variable HOST is not set",
        "server.prot": "unknown key (not part of the schema)",
    }


def test_a_missing_variable_is_not_reported_twice_when_its_empty_value_is_invalid(
    write_config: WriteConfig,
) -> None:
    path = write_config("server:\n  port: ${PORT}\n")

    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})

    assert len(error.value.problems) == 1
    assert problems_of(error) == {"server.port": "environment variable PORT is not set"}


def test_the_environment_is_not_consulted_for_references_in_keys(write_config: WriteConfig) -> None:
    path = write_config("providers:\n  ${NAME}:\n    type: openai\n")

    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={"NAME": "openai"})

    assert list(problems_of(error)) == ["providers.${NAME}"]


# -- providers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RESERVED_MOUNTS))
def test_a_reserved_name_cannot_be_a_provider(name: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_settings({"providers": {name: {"type": "openai"}}})

    assert problems_of(error) == {
        f"providers.{name}": f"provider name {name!r} is reserved for the gateway's own endpoints"
    }


def test_a_reserved_name_is_reported_with_the_other_providers_problems() -> None:
    with pytest.raises(ConfigError) as error:
        parse_settings({"providers": {"admin": {"type": "openai"}, "local": {"type": "openai-compatible"}}})

    assert sorted(problems_of(error)) == ["providers.admin", "providers.local"]


@pytest.mark.parametrize("name", ["OpenAI", "-openai", "open.ai", "open/ai", "", "a" * 64])
def test_a_provider_name_must_be_a_lowercase_path_segment(name: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_settings({"providers": {name: {"type": "openai"}}})

    assert list(problems_of(error)) == [f"providers.{name}"]


BASIC_AUTH_URL = "http://user:s3cret@llm.internal/v1"  # HTTP Basic authentication, by the URL


@pytest.mark.parametrize("credential", ["required", "optional"])
def test_a_base_url_with_a_password_is_refused_beside_an_injected_credential(credential: str) -> None:
    provider = {"type": "openai-compatible", "base_url": BASIC_AUTH_URL, "credential": credential}

    with pytest.raises(ConfigError) as error:
        parse_settings({"providers": {"up": provider}})

    [(where, message)] = problems_of(error).items()
    assert where == "providers.up"
    assert "must not hold a user or password" in message and "credential: none" in message
    assert "s3cret" not in str(error.value)


def test_a_base_url_with_a_password_is_the_upstreams_own_authentication_with_credential_none() -> None:
    provider = {"type": "openai-compatible", "base_url": BASIC_AUTH_URL, "credential": "none"}

    settings = parse_settings({"providers": {"up": provider}})

    assert settings.providers["up"].base_url == BASIC_AUTH_URL


@pytest.mark.parametrize("kind", ["azure-openai", "openai-compatible"])
def test_base_url_is_required_where_the_type_has_no_default(kind: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_settings({"providers": {"up": {"type": kind}}})

    assert problems_of(error) == {"providers.up": f"base_url is required for type {kind}"}


def test_stream_usage_injection_is_no_choice_for_anthropic_whose_streams_report_usage_unasked() -> None:
    with pytest.raises(ConfigError) as error:
        parse_settings({"providers": {"up": {"type": "anthropic", "inject_stream_usage": False}}})

    assert problems_of(error) == {
        "providers.up": "inject_stream_usage applies to OpenAI-style APIs only; anthropic streams report "
        "their usage unasked"
    }


def test_a_gemini_provider_may_switch_off_asking_its_openai_compatible_streams_for_usage() -> None:
    settings = parse_settings(
        {"providers": {"up": {"type": "gemini", "inject_stream_usage": False}, "on": {"type": "gemini"}}}
    )

    assert providers_to_ask(settings) == frozenset({"on"})


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini"])
def test_base_url_is_optional_where_the_type_has_a_default(kind: str) -> None:
    assert parse_settings({"providers": {"up": {"type": kind}}}).providers["up"].base_url is None


def test_a_trailing_slash_on_base_url_is_dropped() -> None:
    settings = parse_settings(
        {"providers": {"local": {"type": "openai-compatible", "base_url": "http://127.0.0.1:11434/v1/"}}}
    )

    assert settings.providers["local"].base_url == "http://127.0.0.1:11434/v1"


@pytest.mark.parametrize(
    "url", ["ftp://host/v1", "api.openai.com/v1", "https://host/v1?x=1", "https://host/v1#f", "https://"]
)
def test_base_url_must_be_plain_http_or_https(url: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_settings({"providers": {"up": {"type": "openai", "base_url": url}}})

    assert list(problems_of(error)) == ["providers.up.base_url"]


# -- frozen -------------------------------------------------------------------------------------------


def test_settings_refuse_assignment_after_loading() -> None:
    settings = parse_settings({"providers": {"openai": {"type": "openai"}}})

    with pytest.raises(ValidationError):
        settings.server.port = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        settings.providers["openai"].base_url = "http://evil"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        settings.auth = settings.auth  # type: ignore[misc]


def test_a_section_left_empty_means_its_defaults() -> None:
    settings = parse_settings({"admin": None, "metering": None})

    assert settings.admin.token_sha256 is None
    assert settings.metering.enabled is True
