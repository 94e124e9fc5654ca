"""One router per resource: scoring, deals, the model, health."""
