"""One router per resource; `api.main` mounts them in an order that keeps literal paths first."""
