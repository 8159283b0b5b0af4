"""Settings: a value that does not parse fails loudly, naming the variable."""

import pytest

from cerebro.settings import load_settings

FLAG_VARS = {"CEREBRO_PUBLISH_CONFIRM": "publish_confirm", "CEREBRO_REUSE_PORT": "reuse_port",
             "CEREBRO_BATCHING": "batching", "CEREBRO_ACCESS_LOG": "access_log",
             "CEREBRO_TRUST_PROXY_HEADERS": "trust_proxy_headers"}


@pytest.mark.parametrize("text", ["1", "true", "TRUE", " Yes ", "on", "On\n"])
def test_flag_true_words(text):
    """1/true/yes/on are true, whatever the case and surrounding blanks."""
    assert load_settings({"CEREBRO_ACCESS_LOG": text}).access_log is True


@pytest.mark.parametrize("text", ["0", "false", "FALSE", " No ", "off", "Off\n"])
def test_flag_false_words(text):
    """0/false/no/off are false, whatever the case and surrounding blanks."""
    assert load_settings({"CEREBRO_PUBLISH_CONFIRM": text}).publish_confirm is False


@pytest.mark.parametrize("var", sorted(FLAG_VARS))
@pytest.mark.parametrize("text", ["enabled", "disabled", "ture", "2", "y", "nope"])
def test_flag_typo_fails_loudly(var, text):
    """A typo in a boolean never silently turns it off (or on): ValueError naming the variable."""
    with pytest.raises(ValueError, match=f"^{var}="):
        load_settings({var: text})


@pytest.mark.parametrize("text", ["", "  "])
def test_empty_flag_means_the_default(text):
    """An empty boolean (``VAR=`` in an env file) is the same as an unset one: the default."""
    defaults = load_settings({})
    for var, name in FLAG_VARS.items():
        assert getattr(load_settings({var: text}), name) == getattr(defaults, name), var
    assert defaults.publish_confirm is True and defaults.access_log is False


@pytest.mark.parametrize("text, level", [("DEBUG", "DEBUG"), ("info", "INFO"),
                                         (" Warning ", "WARNING"), ("error", "ERROR"),
                                         ("CRITICAL", "CRITICAL")])
def test_log_levels(text, level):
    """The five logging level names are accepted in any case and kept upper-case."""
    assert load_settings({"CEREBRO_LOG_LEVEL": text}).log_level == level


@pytest.mark.parametrize("text", ["verbose", "", "10", "WARN", "notset", "trace"])
def test_bad_log_level_fails_loudly(text):
    """An unknown level is refused when settings load instead of silently becoming INFO."""
    with pytest.raises(ValueError, match="^CEREBRO_LOG_LEVEL=.*DEBUG"):
        load_settings({"CEREBRO_LOG_LEVEL": text})


def test_logsetup_refuses_a_bad_level():
    """A level that bypassed load_settings (``--loglevel``) is refused too, not made INFO."""
    from cerebro import logsetup
    from cerebro.settings import ConfigurationError
    with pytest.raises(ConfigurationError, match="verbose"):
        logsetup.configure(load_settings({}).replace(log_level="verbose"), "test")


@pytest.mark.parametrize("var", ["CEREBRO_RELOAD_INTERVAL", "CEREBRO_CALLBACK_BACKOFF",
                                 "CEREBRO_BROKER_TIMEOUT", "CEREBRO_CALLBACK_RETRY_WINDOW"])
@pytest.mark.parametrize("text", ["nan", "inf", "-1", "soon"])
def test_durations_must_be_finite_and_not_negative(var, text):
    """A duration of nan, infinity or below zero is refused, naming the variable."""
    with pytest.raises(ValueError, match=f"^{var}="):
        load_settings({var: text})


def test_durations_accept_zero_and_fractions():
    """Zero and fractional seconds are fine."""
    settings = load_settings({"CEREBRO_RELOAD_INTERVAL": "0.25", "CEREBRO_CALLBACK_BACKOFF": "0"})
    assert settings.reload_interval == 0.25 and settings.callback_backoff == 0.0


def test_former_names_are_read_and_must_agree():
    """CEREBRO_RETRIES took over CEREBRO_CONSUMER_RETRIES and CEREBRO_PUBSUB_RETRIES: either
    former name still works, the same value twice is fine, different values are refused
    (which transport's value was meant cannot be guessed)."""
    assert load_settings({"CEREBRO_CONSUMER_RETRIES": "5"}).retries == 5
    assert load_settings({"CEREBRO_PUBSUB_RETRIES": "2", "CEREBRO_RETRIES": "2"}).retries == 2
    with pytest.raises(ValueError, match="CEREBRO_CONSUMER_RETRIES='5' and "
                                         "CEREBRO_PUBSUB_RETRIES='1' are one setting now"):
        load_settings({"CEREBRO_CONSUMER_RETRIES": "5", "CEREBRO_PUBSUB_RETRIES": "1"})
    with pytest.raises(ValueError, match="^CEREBRO_CONSUMER_RETRY_BACKOFF="):
        load_settings({"CEREBRO_CONSUMER_RETRY_BACKOFF": "nan"})
