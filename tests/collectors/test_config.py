from pathlib import Path

import pytest

from collectors.config import ConfigError, load_settings, redacted, settings_from_mapping


def test_defaults_without_file_or_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 8600
    assert settings.index.url == "sqlite:///eventscope.db"
    assert settings.clusters == ()


def test_default_file_is_read_and_environment_overrides_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "eventscope.toml").write_text(
        '[server]\nport = 9000\n[clusters.prod]\nbootstrap = "k1:9092,k2:9092"\n'
        '[clusters.staging]\nbootstrap = "s1:9092"\n'
    )
    settings = load_settings(
        environ={"EVENTSCOPE_PORT": "9100", "EVENTSCOPE_INDEX_URL": "postgresql+psycopg://h/db"}
    )
    assert settings.server.port == 9100
    assert settings.index.url == "postgresql+psycopg://h/db"
    assert [c.name for c in settings.clusters] == ["prod", "staging"]
    assert settings.source == "eventscope.toml"


def test_kafka_bootstrap_variable_defines_or_overrides_the_first_cluster(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={"EVENTSCOPE_KAFKA_BOOTSTRAP": "127.0.0.1:9092"})
    assert [(c.name, c.bootstrap) for c in settings.clusters] == [("default", "127.0.0.1:9092")]
    config = tmp_path / "c.toml"
    config.write_text('[clusters.prod]\nbootstrap = "k1:9092"\n')
    settings = load_settings(config, {"EVENTSCOPE_KAFKA_BOOTSTRAP": "k9:9093"})
    assert settings.cluster("prod").bootstrap == "k9:9093"


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[server]\nport = 99999\n", "server.port"),
        ("[server]\nprot = 1\n", "server.prot"),
        ("[sever]\n", "sever"),
        ('[index]\nurl = "mysql://x"\n', "index.url"),
        ("[clusters.a]\nsecurity_protocol = 'SSL'\n", "clusters.a.bootstrap"),
        ('[clusters.a]\nbootstrap = "nohostport"\n', "clusters.a.bootstrap"),
        (
            '[clusters.a]\nbootstrap = "h:1"\nsecurity_protocol = "SASL_PLAINTEXT"\n',
            "clusters.a.sasl_mechanism",
        ),
        ('[collector]\nvalue_cap = "big"\n', "collector.value_cap"),
        (
            "[collector]\nretention_unfinished_sagas_s = -1\n",
            "collector.retention_unfinished_sagas_s",
        ),
        ("[collector]\nsession_timeout_ms = 500\n", "collector.session_timeout_ms"),
        ("[lag]\nwindow = 1\n", "lag.window"),
    ],
)
def test_invalid_configuration_names_the_bad_key(tmp_path: Path, toml: str, key: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError) as error:
        load_settings(config, {})
    assert error.value.key == key


def test_broken_toml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[server\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken, {})
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "missing.toml", {})


def test_environment_errors_name_the_variable(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("")
    for variable, value in (
        ("EVENTSCOPE_PORT", "eighty"),
        ("EVENTSCOPE_PORT", "70000"),
        ("EVENTSCOPE_INDEX_URL", "oracle://x"),
        ("EVENTSCOPE_KAFKA_BOOTSTRAP", "no-port"),
        ("EVENTSCOPE_AUTH", "maybe"),
    ):
        with pytest.raises(ConfigError) as error:
            load_settings(config, {variable: value})
        assert error.value.key == variable


def test_auth_off_only_on_loopback(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("")
    assert load_settings(config, {"EVENTSCOPE_AUTH": "off"}).server.auth == "off"
    assert (
        load_settings(config, {"EVENTSCOPE_AUTH": "off", "EVENTSCOPE_HOST": "::1"}).server.auth
        == "off"
    )
    with pytest.raises(ConfigError) as error:
        load_settings(config, {"EVENTSCOPE_AUTH": "off", "EVENTSCOPE_HOST": "0.0.0.0"})
    assert error.value.key == "EVENTSCOPE_AUTH"


def test_redacted_configuration_hides_secrets() -> None:
    settings = settings_from_mapping(
        {
            "index": {"url": "postgresql+psycopg://es:hunter2@db/es"},
            "clusters": {
                "prod": {
                    "bootstrap": "k:9092",
                    "security_protocol": "SASL_SSL",
                    "sasl_mechanism": "SCRAM-SHA-512",
                    "sasl_username": "es",
                    "sasl_password": "hunter2",
                }
            },
        }
    )
    shown = redacted(settings)
    text = repr(shown)
    assert "hunter2" not in text
    assert shown["clusters"]["prod"]["sasl_password"] == "***"
    assert shown["index"]["url"] == "postgresql+psycopg://es:***@db/es"


def test_sagas_section_is_validated_and_bad_keys_are_named(tmp_path: Path) -> None:
    path = tmp_path / "eventscope.toml"
    path.write_text(
        "[sagas]\nstuck_after_s = 600\n[sagas.outcomes]\nfailed = ['Bounced']\n"
        "[[sagas.definitions]]\nname = 'trip'\ntopics = ['trip-*']\ntimeout_s = 900\n"
        "[[sagas.definitions.steps]]\nname = 'flight'\ncompensations = ['FlightCancelled']\n"
    )
    settings = load_settings(path, environ={})
    assert settings.sagas["stuck_after_s"] == 600
    assert settings.sagas["definitions"][0]["name"] == "trip"
    assert redacted(settings)["sagas"]["outcomes"] == {"failed": ["Bounced"]}
    bad_step = {"definitions": [{"name": "t", "topics": ["t"], "steps": [{"timeout_s": 5}]}]}
    for sagas, key in (
        ({"stuck_after_s": 0}, "sagas.stuck_after_s"),
        ({"outcomes": {"maybe": ["X"]}}, "sagas.outcomes.maybe"),
        (bad_step, "sagas.definitions[0].steps[0].name"),
        ({"nope": 1}, "sagas.nope"),
        ([], "sagas"),
    ):
        with pytest.raises(ConfigError) as caught:
            settings_from_mapping({"sagas": sagas})
        assert caught.value.key == key, sagas


def test_schema_registry_short_and_full_forms_and_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[clusters.prod]\nbootstrap = "k:9092"\nschema_registry = "http://sr:8081"\n'
        '[clusters.staging]\nbootstrap = "s:9092"\n'
        "[clusters.staging.schema_registry]\n"
        'url = "https://sr.staging:8081/apis/ccompat/v7"\nusername = "es"\npassword = "pw"\n'
        "verify = false\ntimeout_s = 2\n"
    )
    settings = load_settings(config, {})
    prod, staging = settings.cluster("prod"), settings.cluster("staging")
    assert prod.schema_registry is not None and prod.schema_registry.url == "http://sr:8081"
    assert prod.schema_registry.verify is True and prod.schema_registry.timeout_s == 5.0
    registry = staging.schema_registry
    assert registry is not None
    assert (registry.username, registry.password, registry.verify, registry.timeout_s) == (
        "es",
        "pw",
        False,
        2.0,
    )
    moved = load_settings(config, {"EVENTSCOPE_SCHEMA_REGISTRY_URL": "http://other:8081"})
    first = moved.cluster("prod").schema_registry
    assert first is not None and first.url == "http://other:8081"
    assert moved.cluster("staging").schema_registry == registry
    with pytest.raises(ConfigError) as error:
        load_settings(config, {"EVENTSCOPE_SCHEMA_REGISTRY_URL": "sr:8081"})
    assert error.value.key == "EVENTSCOPE_SCHEMA_REGISTRY_URL"


@pytest.mark.parametrize(
    ("registry", "key"),
    [
        ('schema_registry = "sr:8081"', "clusters.a.schema_registry.url"),
        ("[clusters.a.schema_registry]\nusername = 'x'", "clusters.a.schema_registry.url"),
        (
            "[clusters.a.schema_registry]\nurl = 'http://sr'\ntoken = 't'\nusername = 'u'",
            "clusters.a.schema_registry.token",
        ),
        (
            "[clusters.a.schema_registry]\nurl = 'http://sr'\npassword = 'p'",
            "clusters.a.schema_registry.username",
        ),
        (
            "[clusters.a.schema_registry]\nurl = 'http://sr'\ntimeout_s = 0",
            "clusters.a.schema_registry.timeout_s",
        ),
        (
            "[clusters.a.schema_registry]\nurl = 'http://sr'\nverify = 'no'",
            "clusters.a.schema_registry.verify",
        ),
        (
            "[clusters.a.schema_registry]\nurl = 'https://sr'\nca_file = '/nowhere/ca.pem'",
            "clusters.a.schema_registry.ca_file",
        ),
        (
            "[clusters.a.schema_registry]\nurl = 'http://sr'\nurll = 'x'",
            "clusters.a.schema_registry.urll",
        ),
        (
            "[clusters.a.topic_schemas.orders]\nvalue = {avro = 'missing.avsc'}",
            "clusters.a.topic_schemas.orders.value.avro",
        ),
        (
            "[clusters.a.topic_schemas.orders]\nvalue = {protobuf = 'x.desc'}",
            "clusters.a.topic_schemas.orders.value.message",
        ),
        (
            "[clusters.a.topic_schemas.orders]\nheaders = {avro = 'x.avsc'}",
            "clusters.a.topic_schemas.orders.headers",
        ),
        (
            "[clusters.a.topic_schemas.orders]\nvalue = {}",
            "clusters.a.topic_schemas.orders.value",
        ),
    ],
)
def test_bad_schema_settings_name_the_key(tmp_path: Path, registry: str, key: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(f'[clusters.a]\nbootstrap = "h:1"\n{registry}\n')
    with pytest.raises(ConfigError) as error:
        load_settings(config, {})
    assert error.value.key == key


def test_topic_schema_files_are_read_at_load(tmp_path: Path) -> None:
    schema = tmp_path / "order.avsc"
    schema.write_text(
        '{"type": "record", "name": "Order", "fields": [{"name": "id", "type": "string"}]}'
    )
    config = tmp_path / "c.toml"
    config.write_text(
        f'[clusters.a]\nbootstrap = "h:1"\n[clusters.a.topic_schemas.orders]\n'
        f"value = {{avro = '{schema}'}}\n"
    )
    parts = load_settings(config, {}).cluster("a").topic_schemas["orders"]
    assert parts.value is not None and parts.value.avro == str(schema) and parts.key is None
    schema.write_text("{not json")
    with pytest.raises(ConfigError) as error:
        load_settings(config, {})
    assert error.value.key == "clusters.a.topic_schemas.orders.value.avro"


def test_redacted_configuration_hides_registry_credentials() -> None:
    settings = settings_from_mapping(
        {
            "clusters": {
                "a": {
                    "bootstrap": "k:9092",
                    "schema_registry": {"url": "http://sr:8081", "username": "u", "password": "p1"},
                },
                "b": {
                    "bootstrap": "k:9092",
                    "schema_registry": {"url": "https://u:p2@sr:8081", "token": "t0ken"},
                },
            }
        }
    )
    shown = redacted(settings)
    text = repr(shown)
    assert "p1" not in text and "p2" not in text and "t0ken" not in text
    assert shown["clusters"]["a"]["schema_registry"]["password"] == "***"
    assert shown["clusters"]["a"]["schema_registry"]["username"] == "u"
    assert shown["clusters"]["b"]["schema_registry"]["url"] == "https://u:***@sr:8081"
    assert shown["clusters"]["b"]["schema_registry"]["token"] == "***"
