"""The code examples of the seed document, verbatim.

Source: the README of the official Genesis DB Python SDK (github.com/genesisdb-io/
genesisdb-io-client-python, README.md). Each value is one fenced ``python`` block, unchanged.
"""

# ruff: noqa: E501 - the examples are verbatim, long lines included

from __future__ import annotations

BASIC_SETUP = """
from genesisdb import Client

# Initialize the GenesisDB client
client = Client()
"""

STREAM_BASIC = """
# Stream all events for a subject
events = await client.stream_events('/customer')
"""

STREAM_LOWER_BOUND = """
events = await client.stream_events('/', {
    'lower_bound': '2d6d4141-6107-4fb2-905f-445730f4f2a9',
    'include_lower_bound_event': True
})
"""

STREAM_LATEST = """
events = await client.stream_events('/', {
    'latest_by_event_type': 'io.genesisdb.app.customer-updated'
})
"""

COMMIT_BASIC = """
await client.commit_events([
    {
        'source': 'io.genesisdb.app',
        'subject': '/customer',
        'type': 'io.genesisdb.app.customer-added',
        'data': {
            'firstName': 'Bruce',
            'lastName': 'Wayne',
            'emailAddress': 'bruce.wayne@enterprise.wayne'
        }
    },
    {
        'source': 'io.genesisdb.app',
        'subject': '/customer',
        'type': 'io.genesisdb.app.customer-added',
        'data': {
            'firstName': 'Alfred',
            'lastName': 'Pennyworth',
            'emailAddress': 'alfred.pennyworth@enterprise.wayne'
        }
    },
    {
        'source': 'io.genesisdb.store',
        'subject': '/article',
        'type': 'io.genesisdb.store.article-added',
        'data': {
            'name': 'Tumbler',
            'color': 'black',
            'price': 2990000.00
        }
    },
    {
        'source': 'io.genesisdb.app',
        'subject': '/customer/fed2902d-0135-460d-8605-263a06308448',
        'type': 'io.genesisdb.app.customer-personaldata-changed',
        'data': {
            'firstName': 'Angus',
            'lastName': 'MacGyver',
            'emailAddress': 'angus.macgyer@phoenix.foundation'
        }
    }
])
"""

IS_SUBJECT_NEW = """
await client.commit_events([
    {
        'source': 'io.genesisdb.app',
        'subject': '/user/456',
        'type': 'io.genesisdb.app.user-created',
        'data': {
            'firstName': 'John',
            'lastName': 'Doe',
            'email': 'john.doe@example.com'
        }
    }
], [
    {
        'type': 'isSubjectNew',
        'payload': {
            'subject': '/user/456'
        }
    }
])
"""

IS_SUBJECT_EXISTING = """
await client.commit_events([
    {
        'source': 'io.genesisdb.app',
        'subject': '/user/456',
        'type': 'io.genesisdb.app.user-created',
        'data': {
            'firstName': 'John',
            'lastName': 'Doe',
            'email': 'john.doe@example.com'
        }
    }
], [
    {
        'type': 'isSubjectExisting',
        'payload': {
            'subject': '/user/456'
        }
    }
])
"""

QUERY_UNIQUENESS = """
await client.commit_events([
    {
        'source': 'io.genesisdb.app',
        'subject': '/user/456',
        'type': 'io.genesisdb.app.user-created',
        'data': {
            'firstName': 'John',
            'lastName': 'Doe',
            'email': 'john.doe@example.com'
        }
    }
], [
    {
        'type': 'isQueryResultTrue',
        'payload': {
            'query': "STREAM e FROM events WHERE e.data.email == 'john.doe@example.com' MAP COUNT() == 0"
        }
    }
])
"""

QUERY_TRANSACTION_LIMIT = """
await client.commit_events([
    {
        'source': 'io.genesisdb.banking',
        'subject': '/user/123/transactions',
        'type': 'io.genesisdb.banking.transaction-processed',
        'data': {
            'amount': 500.00,
            'currency': 'EUR'
        }
    }
], [
    {
        'type': 'isQueryResultTrue',
        'payload': {
            'query': "STREAM e FROM events WHERE e.subject UNDER '/user/123' AND e.type == 'transaction-processed' AND e.time >= '2024-01-01T00:00:00Z' MAP SUM(e.data.amount) + 500 <= 10000"
        }
    }
])
"""

QUERY_COMPLEX = """
await client.commit_events([
    {
        'source': 'io.genesisdb.events',
        'subject': '/conference/2024/registrations',
        'type': 'io.genesisdb.events.registration-created',
        'data': {
            'attendeeId': 'att-789',
            'ticketType': 'premium'
        }
    }
], [
    {
        'type': 'isQueryResultTrue',
        'payload': {
            'query': "STREAM e FROM events WHERE e.subject UNDER '/conference/2024/registrations' AND e.type == 'registration-created' GROUP BY e.data.ticketType HAVING e.data.ticketType == 'premium' MAP COUNT() < 50"
        }
    }
])
"""

STORE_AS_REFERENCE = """
await client.commit_events([
    {
        'source': 'io.genesisdb.app',
        'subject': '/user/456',
        'type': 'io.genesisdb.app.user-created',
        'data': {
            'firstName': 'John',
            'lastName': 'Doe',
            'email': 'john.doe@example.com'
        },
        'options': {
            'store_data_as_reference': True
        }
    }
])
"""

ERASE = """
await client.erase_data('/user/456')
"""

OBSERVE_BASIC = """
async for event in client.observe_events('/customer'):
    print('Received event:', event)
"""

OBSERVE_LOWER_BOUND = """
async for event in client.observe_events('/customer', {
    'lower_bound': '2d6d4141-6107-4fb2-905f-445730f4f2a9',
    'include_lower_bound_event': True
}):
    print('Received event:', event)
"""

OBSERVE_LATEST = """
async for event in client.observe_events('/customer', {
    'latest_by_event_type': 'io.genesisdb.app.customer-updated'
}):
    print('Received latest event:', event)
"""

QUERY_EVENTS = """
results = await client.query_events(
    'STREAM e FROM events WHERE e.type == "io.genesisdb.app.customer-added" '
    'ORDER BY e.time DESC LIMIT 20 '
    'MAP { subject: e.subject, firstName: e.data.firstName }'
)
print('Query results:', results)
"""

HEALTH = """
# Check API status
ping_response = await client.ping()
print('Ping response:', ping_response)

# Run audit to check event consistency
audit_response = await client.audit()
print('Audit response:', audit_response)
"""
