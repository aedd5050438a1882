"""Server-rendered pages: a user's privacy settings and "where my data went"; the operator's console."""
