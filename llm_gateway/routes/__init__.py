"""The gateway's routes, by concern: the OpenAI API (openai_api.py) and operations (operations.py)."""
