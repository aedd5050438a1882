"""Pure policy domain: vocabulary, model, YAML loader, point decision and bulk compiler. No I/O."""
