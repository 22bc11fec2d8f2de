"""The schema's models as a pydantic-core schema, for `lsq.manifest._core`.

Written by `python -m lsq.manifest._compile`; do not edit.
"""

# fmt: off

from lsq.manifest import _frozen, _rules
from lsq.manifest._core import defaults, field, make, model

SOURCES = 'c1b6f32cea8e8863217eeab63acccd57'
PYDANTIC = '2.14.4'
PYDANTIC_CORE = '2.50.5'

DURATION = {
    'type': 'function-before',
    'function': {'type': 'no-info', 'function': _frozen.parse_duration},
    'schema': {'type': 'float'},
}

OPTIONAL_DURATION = {'type': 'nullable', 'schema': DURATION}

HEALTH = model(
    'Health',
    {
        'http': field({'type': 'nullable', 'schema': {'type': 'str'}}, default=None),
        'tcp': field({'type': 'bool'}, default=False),
        'command': field(
            {
                'type': 'nullable',
                'schema': {
                    'type': 'union',
                    'choices': [{'type': 'str'}, {'type': 'list', 'items_schema': {'type': 'str'}}],
                },
            },
            default=None,
        ),
        'interval': field(DURATION, default=5.0),
        'timeout': field(DURATION, default=1.0),
        'start_period': field(DURATION, default=0.0),
        'failure_threshold': field({'type': 'int', 'ge': 1}, default=3),
        'success_threshold': field({'type': 'int', 'ge': 1}, default=1),
    },
)

RESTART = model(
    'Restart',
    {
        'policy': field(
            {'type': 'literal', 'expected': ['always', 'on-failure', 'no']},
            default='on-failure',
        ),
        'backoff': field(DURATION, default=1.0),
        'backoff_max': field(DURATION, default=30.0),
        'max_restarts': field(
            {'type': 'nullable', 'schema': {'type': 'int', 'ge': 0}},
            default=None,
        ),
        'reset_after': field(DURATION, default=60.0),
    },
    referenced=True,
)

ROUTE = model(
    'Route',
    {
        'prefix': field(
            {
                'type': 'function-after',
                'function': {'type': 'no-info', 'function': _rules.prefix_slash},
                'schema': {'type': 'str'},
            },
        ),
        'strip': field({'type': 'bool'}, default=True),
        'policy': field(
            {
                'type': 'nullable',
                'schema': {
                    'type': 'definition-ref',
                    'schema_ref': 'lsq.manifest._schema.Policy',
                },
            },
            default=None,
        ),
    },
    referenced=True,
)

SMOKEREQUEST = model(
    'SmokeRequest',
    {
        'path': field(
            {
                'type': 'function-after',
                'function': {'type': 'no-info', 'function': _rules.path_slash},
                'schema': {'type': 'str'},
            },
        ),
        'method': field(
            {
                'type': 'literal',
                'expected': ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS'],
            },
            default='GET',
        ),
        'status': field({'type': 'int', 'ge': 100, 'le': 599}, default=200),
        'contains': field(
            {'type': 'nullable', 'schema': {'type': 'str'}},
            default=None,
        ),
    },
    referenced=True,
)

ANALYSIS = model(
    'Analysis',
    {
        'min_requests': field({'type': 'int', 'ge': 1}, default=50),
        'max_error_increase': field({'type': 'float', 'ge': 0, 'le': 1}, default=0.01),
        'max_p99_ratio': field({'type': 'float', 'ge': 1}, default=1.5),
        'p99_slack': field(DURATION, default=0.05),
        'extend': field({'type': 'int', 'ge': 0, 'le': 100}, default=3),
        'on_inconclusive': field(
            {'type': 'literal', 'expected': ['rollback', 'promote']},
            default='rollback',
        ),
    },
    referenced=True,
)

RELEASE = model(
    'Release',
    {
        'strategy': field(
            {'type': 'literal', 'expected': ['blue-green', 'canary']},
            default='blue-green',
        ),
        'steps': field(
            {
                'type': 'function-after',
                'function': {'type': 'no-info', 'function': _rules.rising_steps},
                'schema': {'type': 'list', 'items_schema': {'type': 'int'}},
            },
            default_factory=defaults([5, 25, 50, 100]),
            default_factory_takes_data=False,
        ),
        'step_time': field(DURATION, default=30.0),
        'ready_timeout': field(DURATION, default=60.0),
        'drain_timeout': field(DURATION, default=30.0),
        'warm': field(DURATION, default=60.0),
        'smoke': field(
            {'type': 'list', 'items_schema': SMOKEREQUEST},
            default_factory=list,
            default_factory_takes_data=False,
        ),
        'analysis': field(
            ANALYSIS,
            default_factory=defaults(make('Analysis')({'min_requests': 50, 'max_error_increase': 0.01, 'max_p99_ratio': 1.5, 'p99_slack': 0.05, 'extend': 3, 'on_inconclusive': 'rollback'})),
            default_factory_takes_data=False,
        ),
    },
    referenced=True,
)

SERVICE = model(
    'Service',
    {
        'command': field(
            {
                'type': 'nullable',
                'schema': {
                    'type': 'union',
                    'choices': [{'type': 'str'}, {'type': 'list', 'items_schema': {'type': 'str'}}],
                },
            },
            default=None,
        ),
        'cwd': field({'type': 'nullable', 'schema': {'type': 'str'}}, default=None),
        'env': field(
            {
                'type': 'dict',
                'keys_schema': {'type': 'str'},
                'values_schema': {'type': 'str'},
            },
            default_factory=dict,
            default_factory_takes_data=False,
        ),
        'env_file': field(
            {
                'type': 'function-before',
                'function': {'type': 'no-info', 'function': _rules.one_or_many},
                'schema': {'type': 'list', 'items_schema': {'type': 'str'}},
            },
            default_factory=list,
            default_factory_takes_data=False,
        ),
        'port': field(
            {
                'type': 'nullable',
                'schema': {'type': 'int', 'strict': True, 'ge': 1, 'le': 65535},
            },
            default=None,
        ),
        'replicas': field(
            {'type': 'int', 'ge': 0, 'le': 256, 'strict': True},
            default=1,
        ),
        'health': field(
            {
                'type': 'nullable',
                'schema': {
                    'type': 'function-after',
                    'function': {'type': 'no-info', 'function': _rules.one_health_kind},
                    'schema': HEALTH,
                    'ref': 'lsq.manifest._schema.Health',
                },
            },
            default=None,
        ),
        'depends_on': field(
            {
                'type': 'function-before',
                'function': {'type': 'no-info', 'function': _rules.depends_shorthand},
                'schema': {
                    'type': 'dict',
                    'keys_schema': {'type': 'str'},
                    'values_schema': {
                        'type': 'nullable',
                        'schema': {
                            'type': 'literal',
                            'expected': ['started', 'healthy', 'completed'],
                        },
                    },
                },
            },
            default_factory=dict,
            default_factory_takes_data=False,
        ),
        'restart': field(
            {
                'type': 'function-before',
                'function': {'type': 'no-info', 'function': _rules.restart_shorthand},
                'schema': RESTART,
            },
            default_factory=defaults(make('Restart')({'policy': 'on-failure', 'backoff': 1.0, 'backoff_max': 30.0, 'max_restarts': None, 'reset_after': 60.0})),
            default_factory_takes_data=False,
        ),
        'startup_timeout': field(DURATION, default=120.0),
        'stop_signal': field(
            {
                'type': 'literal',
                'expected': ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGKILL'],
            },
            default='SIGTERM',
        ),
        'stop_timeout': field(DURATION, default=10.0),
        'data': field(
            {
                'type': 'nullable',
                'schema': {
                    'type': 'literal',
                    'expected': ['sqlite', 'postgres', 'sql'],
                },
            },
            default=None,
        ),
        'external': field(
            {'type': 'nullable', 'schema': {'type': 'str'}},
            default=None,
        ),
        'routes': field(
            {'type': 'list', 'items_schema': ROUTE},
            default_factory=list,
            default_factory_takes_data=False,
        ),
        'policy': field(
            {
                'type': 'nullable',
                'schema': {
                    'type': 'definition-ref',
                    'schema_ref': 'lsq.manifest._schema.Policy',
                },
            },
            default=None,
        ),
        'release': field({'type': 'nullable', 'schema': RELEASE}, default=None),
    },
)

GATEWAY = model(
    'Gateway',
    {
        'ingress_port': field(
            {'type': 'nullable', 'schema': {'type': 'int', 'ge': 1, 'le': 65535}},
            default=None,
        ),
        'workers': field({'type': 'int', 'ge': 1, 'le': 64}, default=1),
        'trusted_proxies': field(
            {'type': 'list', 'items_schema': {'type': 'str'}},
            default_factory=defaults(['127.0.0.1/32', '::1/128']),
            default_factory_takes_data=False,
        ),
        'header_timeout': field(DURATION, default=10.0),
        'idle_timeout': field(DURATION, default=60.0),
        'access_log': field({'type': 'bool'}, default=True),
    },
    referenced=True,
)

MANIFEST = model(
    'Manifest',
    {
        'name': field({'type': 'nullable', 'schema': {'type': 'str'}}, default=None),
        'services': field(
            {
                'type': 'function-after',
                'function': {'type': 'no-info', 'function': _rules.service_names},
                'schema': {
                    'type': 'dict',
                    'keys_schema': {'type': 'str'},
                    'values_schema': {
                        'type': 'function-after',
                        'function': {
                            'type': 'no-info',
                            'function': _rules.command_or_external,
                        },
                        'schema': SERVICE,
                        'ref': 'lsq.manifest._schema.Service',
                    },
                },
            },
        ),
        'gateway': field(
            GATEWAY,
            default_factory=defaults(make('Gateway')({'ingress_port': None, 'workers': 1, 'trusted_proxies': ['127.0.0.1/32', '::1/128'], 'header_timeout': 10.0, 'idle_timeout': 60.0, 'access_log': True})),
            default_factory_takes_data=False,
        ),
    },
    referenced=True,
)

RETRIES = model(
    'Retries',
    {
        'attempts': field(
            {'type': 'nullable', 'schema': {'type': 'int', 'ge': 0, 'le': 10}},
            default=None,
        ),
        'budget_ratio': field(
            {'type': 'nullable', 'schema': {'type': 'float', 'ge': 0, 'le': 1}},
            default=None,
        ),
        'budget_per_s': field(
            {'type': 'nullable', 'schema': {'type': 'float', 'ge': 0}},
            default=None,
        ),
        'backoff_base': field(OPTIONAL_DURATION, default=None),
        'backoff_cap': field(OPTIONAL_DURATION, default=None),
    },
    referenced=True,
)

OUTLIER = model(
    'Outlier',
    {
        'consecutive_failures': field(
            {'type': 'nullable', 'schema': {'type': 'int', 'ge': 1}},
            default=None,
        ),
        'base_ejection': field(OPTIONAL_DURATION, default=None),
        'max_ejected_ratio': field(
            {'type': 'nullable', 'schema': {'type': 'float', 'ge': 0, 'le': 1}},
            default=None,
        ),
    },
    referenced=True,
)

BREAKER = model(
    'Breaker',
    {'enabled': field({'type': 'nullable', 'schema': {'type': 'bool'}}, default=None)},
    referenced=True,
)

POLICY = model(
    'Policy',
    {
        'connect_timeout': field(OPTIONAL_DURATION, default=None),
        'try_timeout': field(OPTIONAL_DURATION, default=None),
        'timeout': field(OPTIONAL_DURATION, default=None),
        'retries': field({'type': 'nullable', 'schema': RETRIES}, default=None),
        'outlier': field({'type': 'nullable', 'schema': OUTLIER}, default=None),
        'breaker': field({'type': 'nullable', 'schema': BREAKER}, default=None),
    },
    referenced=True,
)

SCHEMA = {'type': 'definitions', 'schema': MANIFEST, 'definitions': [POLICY]}
