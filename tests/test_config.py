"""Settings given as strings (environment variables, ``.env`` files,
``from_prefixed_env``) are parsed strictly by the table in
``oidc_guard.config``; nonsense is a ConfigurationError naming the key."""

import pytest
from flask import Flask

from oidc_guard import ConfigurationError, config
from oidc_guard.flask import OIDCGuard

ISSUER = "https://idp.example.com"
AUDIENCE = "api://contacts"


def guard_with(**settings):
    app = Flask(__name__)
    app.config.update(OIDC_GUARD_ISSUER=ISSUER, OIDC_GUARD_AUDIENCE=AUDIENCE)
    app.config.update(settings)
    OIDCGuard(app)
    return app.extensions["oidc_guard"]


def test_numbers_from_strings():
    state = guard_with(
        OIDC_GUARD_LEEWAY="30",
        OIDC_GUARD_HTTP_TIMEOUT=" 2.5 ",
        OIDC_GUARD_CACHE_SIZE="100",
        OIDC_GUARD_JWKS_COOLDOWN="1e1",
        OIDC_GUARD_MAX_TOKEN_BYTES="+8192",
        OIDC_GUARD_MAX_FORM_BYTES="0",
    )
    v = state.validator
    assert v.leeway == 30.0 and v.http_timeout == 2.5 and v.max_token_bytes == 8192
    assert v._cache is not None and v._cache_size == 100
    assert v.keys.cooldown == 10.0
    assert state.middleware.max_form_bytes == 0


def test_cache_size_zero_from_a_string_turns_the_cache_off():
    assert guard_with(OIDC_GUARD_CACHE_SIZE="0").validator._cache is None


@pytest.mark.parametrize(
    "text",
    ["RS256,ES256", "RS256 ES256", " RS256, ES256 ", "RS256,,ES256\n", '["RS256", "ES256"]', ("RS256", "ES256")],
)
def test_algorithm_lists(text):
    assert guard_with(OIDC_GUARD_ALGORITHMS=text).validator.algorithms == {"RS256", "ES256"}


def test_a_single_algorithm_string():
    assert guard_with(OIDC_GUARD_ALGORITHMS="ES256").validator.algorithms == {"ES256"}


@pytest.mark.parametrize("text", ["api://a api://b", "api://a,api://b", '["api://a","api://b"]'])
def test_audience_lists(text):
    assert guard_with(OIDC_GUARD_AUDIENCE=text).validator.audiences == ("api://a", "api://b")


def test_json_array_keeps_an_item_with_a_comma():
    assert guard_with(OIDC_GUARD_AUDIENCE='["urn:a,b"]').validator.audiences == ("urn:a,b",)


@pytest.mark.parametrize("word, expected", [
    ("true", True), ("TRUE", True), (" yes ", True), ("On", True), ("1", True), (1, True), (True, True),
    ("false", False), ("No", False), ("off", False), ("0", False), (0, False), (False, False),
])
def test_bools(word, expected):
    state = guard_with(OIDC_GUARD_ACCEPT_QUERY=word, OIDC_GUARD_VERIFY_AUDIENCE=word)
    assert state.middleware.accept_query is expected
    assert state.validator.verify_audience is expected


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("OIDC_GUARD_LEEWAY", "abc", "a number >= 0"),
        ("OIDC_GUARD_LEEWAY", "-1", "a number >= 0"),
        ("OIDC_GUARD_LEEWAY", "nan", "a number"),
        ("OIDC_GUARD_LEEWAY", "inf", "a number"),
        ("OIDC_GUARD_LEEWAY", float("inf"), "a number"),
        ("OIDC_GUARD_LEEWAY", "1_000", "a number"),
        ("OIDC_GUARD_LEEWAY", "", "a number"),
        ("OIDC_GUARD_LEEWAY", True, "not a boolean"),
        ("OIDC_GUARD_LEEWAY", [30], "a number"),
        ("OIDC_GUARD_HTTP_TIMEOUT", "0", "a number > 0"),
        ("OIDC_GUARD_HTTP_TIMEOUT", "5s", "a number > 0"),
        ("OIDC_GUARD_CACHE_SIZE", "10.5", "an int >= 0"),
        ("OIDC_GUARD_CACHE_SIZE", 10.0, "an int >= 0"),
        ("OIDC_GUARD_CACHE_SIZE", "0x10", "an int >= 0"),
        ("OIDC_GUARD_CACHE_SIZE", "-1", "an int >= 0"),
        ("OIDC_GUARD_CACHE_SIZE", False, "not a boolean"),
        ("OIDC_GUARD_MAX_TOKEN_BYTES", "0", "an int > 0"),
        ("OIDC_GUARD_JWKS_COOLDOWN", "-5", "a number >= 0"),
        ("OIDC_GUARD_MAX_FORM_BYTES", "1 MiB", "an int >= 0"),
        ("OIDC_GUARD_ALGORITHMS", '["RS256"', "not a JSON array"),
        ("OIDC_GUARD_ALGORITHMS", "[1, 2]", "a list of non-empty strings"),
        ("OIDC_GUARD_ALGORITHMS", 256, "a list of strings"),
        ("OIDC_GUARD_AUDIENCE", '{"a": 1}', "a list"),
        ("OIDC_GUARD_REQUIRED", "maybe", "a boolean"),
        ("OIDC_GUARD_REQUIRED", 2, "a boolean"),
        ("OIDC_GUARD_REQUIRED", "", "a boolean"),
        ("OIDC_GUARD_REALM", 3.5, "a string"),
        ("OIDC_GUARD_REALM", "  ", "a non-empty string"),
        ("OIDC_GUARD_ISSUER", True, "a string"),
    ],
)
def test_nonsense_names_the_key_and_the_value(key, value, expected):
    with pytest.raises(ConfigurationError) as info:
        guard_with(**{key: value})
    message = str(info.value)
    assert message.startswith(f"{key} must be ")
    assert expected in message
    assert repr(value)[:40] in message
    assert f"app.config['{key}']" in message


def test_keyword_arguments_are_read_the_same_way():
    app = Flask(__name__)
    app.config.update(OIDC_GUARD_ISSUER=ISSUER, OIDC_GUARD_AUDIENCE=AUDIENCE)
    OIDCGuard(app, leeway="7", algorithms="RS256 ES256", required="on")
    state = app.extensions["oidc_guard"]
    assert state.validator.leeway == 7.0 and state.validator.algorithms == {"RS256", "ES256"}
    assert state.middleware.required is True
    with pytest.raises(ConfigurationError, match=r"OIDC_GUARD_LEEWAY must be .*'soon' \(from the keyword argument leeway=\)"):
        OIDCGuard(Flask(__name__), issuer=ISSUER, audience=AUDIENCE, leeway="soon")


def test_from_prefixed_env(monkeypatch):
    # Flask's own loader json-decodes what it can: 30 -> int, true -> bool,
    # and leaves "RS256,ES256" and "a b" as strings.
    monkeypatch.setenv("FLASK_OIDC_GUARD_ISSUER", ISSUER)
    monkeypatch.setenv("FLASK_OIDC_GUARD_AUDIENCE", "api://a api://b")
    monkeypatch.setenv("FLASK_OIDC_GUARD_LEEWAY", "30")
    monkeypatch.setenv("FLASK_OIDC_GUARD_ALGORITHMS", "RS256,ES256")
    monkeypatch.setenv("FLASK_OIDC_GUARD_REQUIRED", "true")
    monkeypatch.setenv("FLASK_OIDC_GUARD_REALM", "2024")
    app = Flask(__name__)
    app.config.from_prefixed_env()
    OIDCGuard(app)
    state = app.extensions["oidc_guard"]
    assert state.validator.audiences == ("api://a", "api://b")
    assert state.validator.leeway == 30.0 and state.validator.algorithms == {"RS256", "ES256"}
    assert state.middleware.required is True and state.realm == "2024"


def test_from_environ_takes_the_settings_and_leaves_other_variables_out():
    env = {
        "OIDC_GUARD_ISSUER": ISSUER,
        "OIDC_GUARD_AUDIENCE": AUDIENCE,
        "OIDC_GUARD_HTTP_TIMEOUT": "3",
        "PATH": "/bin",
        "OIDC_GUARD": "not a setting name: no underscore after the prefix",
    }
    settings = config.from_environ(env)
    assert settings == {"OIDC_GUARD_ISSUER": ISSUER, "OIDC_GUARD_AUDIENCE": AUDIENCE, "OIDC_GUARD_HTTP_TIMEOUT": "3"}
    app = Flask(__name__)
    app.config.update(settings)
    OIDCGuard(app)
    assert app.extensions["oidc_guard"].validator.http_timeout == 3.0


def test_from_environ_refuses_an_unknown_name_with_the_same_hint_as_app_config():
    """A typo in the environment used to vanish (the library default
    applied in silence); it is refused as app.config refuses it."""
    env = {"OIDC_GUARD_ISSUER": ISSUER, "OIDC_GUARD_AUDIENCE": AUDIENCE, "OIDC_GUARD_LEEWAY_SECONDS": "30"}
    with pytest.raises(ConfigurationError) as info:
        config.from_environ(env)
    message = str(info.value)
    assert "in the environment: OIDC_GUARD_LEEWAY_SECONDS (did you mean OIDC_GUARD_LEEWAY?)" in message
    with pytest.raises(ConfigurationError) as from_app:
        guard_with(OIDC_GUARD_LEEWAY_SECONDS="30")
    assert "OIDC_GUARD_LEEWAY_SECONDS (did you mean OIDC_GUARD_LEEWAY?)" in str(from_app.value)
    # no close setting: named alone; several: all of them, sorted
    with pytest.raises(ConfigurationError, match=r"environment: OIDC_GUARD_SOMETHING_ELSE; .*from_environ\(ignore="):
        config.from_environ({"OIDC_GUARD_SOMETHING_ELSE": "x"})
    with pytest.raises(ConfigurationError, match=r"OIDC_GUARD_AUDIENSE \(did you mean OIDC_GUARD_AUDIENCE\?\); "
                                                 r"OIDC_GUARD_ISUER \(did you mean OIDC_GUARD_ISSUER\?\)"):
        config.from_environ({"OIDC_GUARD_ISUER": ISSUER, "OIDC_GUARD_AUDIENSE": AUDIENCE})
    # another program's variable with the prefix, named on purpose
    assert config.from_environ({"OIDC_GUARD_SOMETHING_ELSE": "x", "OIDC_GUARD_LEEWAY": "5"},
                               ignore=["OIDC_GUARD_SOMETHING_ELSE"]) == {"OIDC_GUARD_LEEWAY": "5"}


@pytest.mark.parametrize("quote", ['"', "'"])
def test_from_environ_removes_one_pair_of_quotes_for_every_kind(quote):
    """docker run --env-file keeps the quotes of OIDC_GUARD_AUDIENCE="a b";
    every kind of setting gets the same rule: one matching pair around the
    whole value goes, before the value is parsed."""
    q = quote
    env = {
        "OIDC_GUARD_ISSUER": f"{q}{ISSUER}{q}",                       # str
        "OIDC_GUARD_AUDIENCE": f"{q}api://a api://contacts{q}",       # list of str
        "OIDC_GUARD_LEEWAY": f"{q}30{q}",                             # number
        "OIDC_GUARD_CACHE_SIZE": f" {q}100{q} ",                      # int (spaces outside the quotes)
        "OIDC_GUARD_REQUIRED": f"{q}true{q}",                         # bool
        "OIDC_GUARD_DPOP": f"{q}required{q}",                         # choice
        "OIDC_GUARD_INTROSPECTION_CLIENT_SECRET": f"{q}s{q}cret{q}",  # secret: inner quotes stay
        "OIDC_GUARD_INTROSPECTION_CLIENT_ID": "contacts-api",
        "OIDC_GUARD_REALM": f"{q}{q}{q}contacts{q}{q}{q}",            # only one pair goes
        "OIDC_GUARD_ALGORITHMS": f"{q}[\"RS256\", \"ES256\"]{q}",     # a quoted JSON array
    }
    settings = config.from_environ(env)
    assert settings["OIDC_GUARD_AUDIENCE"] == "api://a api://contacts"
    assert settings["OIDC_GUARD_LEEWAY"] == "30"
    assert settings["OIDC_GUARD_INTROSPECTION_CLIENT_SECRET"] == f"s{q}cret"
    app = Flask(__name__)
    app.config.update(settings)
    OIDCGuard(app)
    state = app.extensions["oidc_guard"]
    v = state.validator
    assert v.issuer == ISSUER and v.audiences == ("api://a", "api://contacts")
    assert v.leeway == 30.0 and v._cache_size == 100 and v.algorithms == {"RS256", "ES256"}
    assert state.middleware.required is True and state.realm == f"{q}{q}contacts{q}{q}"
    # unmatched or lone quotes are not a pair: the value is left as it is (and refused)
    for odd in (f"{q}30", f"30{q}", q, "\"30'"):
        with pytest.raises(ConfigurationError, match="OIDC_GUARD_LEEWAY must be a number"):
            config.from_environ({"OIDC_GUARD_LEEWAY": odd})


def test_an_error_in_the_environment_names_the_environment_variable():
    with pytest.raises(ConfigurationError) as info:
        config.from_environ({"OIDC_GUARD_LEEWAY": "thirty"})
    assert str(info.value) == ("OIDC_GUARD_LEEWAY must be a number >= 0 (e.g. \"30\" or \"2.5\"), got 'thirty' "
                               "(from the environment variable OIDC_GUARD_LEEWAY)")
    assert "app.config" not in str(info.value)
    # a secret's value is not shown, wherever it came from
    with pytest.raises(ConfigurationError) as secret:
        config.from_environ({"OIDC_GUARD_INTROSPECTION_CLIENT_SECRET": '""'})
    assert "(a secret: value not shown) (from the environment variable " in str(secret.value)
    # empty after the quotes: refused, not taken as "no setting"
    with pytest.raises(ConfigurationError, match=r"OIDC_GUARD_ISSUER must be a non-empty string.*environment variable"):
        config.from_environ({"OIDC_GUARD_ISSUER": "''"})


def test_a_misspelt_key_is_an_error_with_a_suggestion():
    with pytest.raises(ConfigurationError, match=r"OIDC_GUARD_LEWAY \(did you mean OIDC_GUARD_LEEWAY\?\)"):
        guard_with(OIDC_GUARD_LEWAY="30")
    with pytest.raises(ConfigurationError, match=r"unknown oidc_guard setting\(s\) in app.config: OIDC_GUARD_ZZZ;"):
        guard_with(OIDC_GUARD_ZZZ="1")


def test_a_secret_value_is_never_shown():
    row = config.Setting("OIDC_GUARD_TEST_SECRET", "test_secret", config.VALIDATOR, config.Secret(), "a secret")
    assert row.secret
    assert config.parse_setting(row, "s3cr3t-value") == "s3cr3t-value"
    with pytest.raises(ConfigurationError) as info:
        config.parse_setting(row, ["s3cr3t-value"], source="app.config['OIDC_GUARD_TEST_SECRET']")
    assert "s3cr3t-value" not in str(info.value) and "OIDC_GUARD_TEST_SECRET" in str(info.value)
    assert "value not shown" in str(info.value)


def test_choice():
    row = config.Setting("OIDC_GUARD_TEST_MODE", "test_mode", config.VALIDATOR, config.Choice("local", "both"), "")
    assert config.parse_setting(row, " Both ") == "both"
    with pytest.raises(ConfigurationError, match=r"OIDC_GUARD_TEST_MODE must be one of local, both, got 'remote'"):
        config.parse_setting(row, "remote")


def test_long_values_are_cut_in_messages():
    with pytest.raises(ConfigurationError) as info:
        guard_with(OIDC_GUARD_LEEWAY="x" * 500)
    assert len(str(info.value)) < 250


def test_read_settings_is_framework_free():
    got = config.read_settings(
        {"OIDC_GUARD_LEEWAY": "5", "OIDC_GUARD_REALM": "r", "OIDC_GUARD_ALGORITHMS": None},
        targets=[config.VALIDATOR],
    )
    assert got == {"leeway": 5.0}


def test_every_row_is_a_real_keyword():
    import inspect

    from oidc_guard import TokenValidator
    from oidc_guard.wsgi import BearerMiddleware

    params = {
        config.VALIDATOR: set(inspect.signature(TokenValidator).parameters),
        config.MIDDLEWARE: set(inspect.signature(BearerMiddleware).parameters),
    }
    for row in config.SETTINGS:
        assert row.key == config.PREFIX + row.keyword.upper()
        if row.target in params:
            assert row.keyword in params[row.target], row


def test_accepting_an_evicting_redis_is_a_setting_too():
    for value, expected in (("true", True), (None, False)):
        app = Flask(__name__)
        app.config.update(OIDC_GUARD_ISSUER=ISSUER, OIDC_GUARD_AUDIENCE=AUDIENCE,
                          OIDC_GUARD_SHARED_CACHE="redis://127.0.0.1:1/0",
                          OIDC_GUARD_DPOP_ACCEPT_EVICTING_REDIS=value)
        OIDCGuard(app)  # nothing connects yet
        validator = app.extensions["oidc_guard"].validator
        assert validator.shared_cache.accept_evicting_for_replay is expected
