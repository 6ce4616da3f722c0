"""turnout under other frameworks: `langchain.ChatTurnout`, a LangChain chat model whose every
call goes through turnout's door (roles, local engines, privacy guard, spans, recording)."""

__all__: list[str] = []
