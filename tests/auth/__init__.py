"""Identity tests: register, login, tokens, sessions, passwords."""
