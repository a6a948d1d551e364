"""Reports an operator draws from the records this node holds (`lapnode trends`)."""
