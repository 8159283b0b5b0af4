"""Paired: two handlers of topic ``paired``; one needs a model that is never built, so its
events wait for it while the other handler succeeds on the same events."""

from cerebro import Field, ModelHandle, endpoint

MODEL = ModelHandle("paired")


@endpoint(inputs={"n": Field(int)}, topics=("paired",), extra="ignore")
def ready(n):
    """Answer at once."""
    return {"n": n}


@endpoint(inputs={"n": Field(int)}, topics=("paired",), extra="ignore")
def waiting(n):
    """Ask for the model that never comes."""
    MODEL.get()
