"""Demo and render tooling of the checkout (run in a bpy module's Python); not shipped in the extension zip."""
