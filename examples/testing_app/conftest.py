import chat
import pytest

import eventsock


# --8<-- [start:app]
@pytest.fixture
def eventsock_app() -> eventsock.Server:
    """The server that eventsock's fixtures run for each test."""
    return chat.create_server()


# --8<-- [end:app]
