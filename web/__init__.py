"""The web app's parts: one module per tab (chat, documents, evaluate), the renderer, and the stores they share.

Nothing here imports gradio at package level, so `eval/` can use `web.ratings` without it.
"""
