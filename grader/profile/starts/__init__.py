"""Reading how a repository says its app starts (see detect.py)."""
