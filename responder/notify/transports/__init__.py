"""One module per kind of receiver, each with a module-level `TRANSPORT` (see responder.notify.model.Transport)."""
