"""The in-browser detector of the edge chapter: its build script (the page itself is in site/)."""
