"""The Gradio playground: pick a model, prompt it, and hear or read the generation while it is made.

Layers: `app` -> `trainers` -> `engine`.  Nothing here knows how a model works; every handler is a plain
function in a small module (generate, speed, train, catalog) so it is testable without a server, and
`app.ui` only wires those functions to Gradio components.  `python -m app` serves it.
"""
