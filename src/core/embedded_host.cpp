// placeholder: filled in by the method-hosting work.
