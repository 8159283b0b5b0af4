"""Echo: a module with no model, for API tests."""

from cerebro import Field, endpoint


@endpoint(inputs={"text": Field(str, min_length=1),
                  "times": Field(int, minimum=1, maximum=5, default=1),
                  "ratio": Field(float, minimum=0.0, maximum=1.0, default=0.5)})
def say(text, times, ratio):
    """Repeat text."""
    return {"text": " ".join([text] * times), "ratio": ratio}


def add(a: float, b: float = 1.0):
    """Add two numbers (inputs read from the signature)."""
    return {"sum": a + b}
