"""Access control: who is asking (sessions, API tokens, a trusted proxy header), what each
role may do (one table for every route), CSRF for browser forms, and security headers."""
