"""Hugging Face Spaces entry point (the README's front matter says `app_file: app.py`): the same as `python -m app`.

`import app` below still finds the `app/` package, not this file: Python prefers a package folder to a module
file of the same name in one directory.
"""
from app.__main__ import main

if __name__ == "__main__":
    main()
