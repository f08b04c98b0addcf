"""The storage layer: SQLAlchemy 2 async models, the event journal, repositories and migrations.

SQL lives here and nowhere else. The bus reaches it only through the `Journal` protocol it defines;
features reach it through the repositories and own their transactions.
"""
