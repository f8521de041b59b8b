"""Pure domain logic of the dispatcher: values and `now` in, decisions out; no I/O."""
