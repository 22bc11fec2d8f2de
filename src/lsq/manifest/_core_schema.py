"""The schema's models as a pydantic-core schema, for `lsq.manifest._core`.

Written by `python -m lsq.manifest._compile`; do not edit.
"""

# fmt: off

from lsq.manifest import _frozen, _rules
from lsq.manifest._core import defaults, make

SOURCES = 'f3439a672a9a8ea6a843ed8554a23997'
PYDANTIC = '2.14.4'
PYDANTIC_CORE = '2.50.5'

HEALTH = {
    'type': 'function-after',
    'function': {'type': 'no-info', 'function': make('Health')},
    'schema': {
        'type': 'typed-dict',
        'fields': {
            'http': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'nullable', 'schema': {'type': 'str'}},
                    'default': None,
                },
                'required': False,
            },
            'tcp': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'bool'},
                    'default': False,
                },
                'required': False,
            },
            'command': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'nullable',
                        'schema': {
                            'type': 'union',
                            'choices': [{'type': 'str'}, {'type': 'list', 'items_schema': {'type': 'str'}}],
                        },
                    },
                    'default': None,
                },
                'required': False,
            },
            'interval': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'function-before',
                        'function': {
                            'type': 'no-info',
                            'function': _frozen.parse_duration,
                        },
                        'schema': {'type': 'float'},
                    },
                    'default': 5.0,
                },
                'required': False,
            },
            'timeout': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'function-before',
                        'function': {
                            'type': 'no-info',
                            'function': _frozen.parse_duration,
                        },
                        'schema': {'type': 'float'},
                    },
                    'default': 1.0,
                },
                'required': False,
            },
            'start_period': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'function-before',
                        'function': {
                            'type': 'no-info',
                            'function': _frozen.parse_duration,
                        },
                        'schema': {'type': 'float'},
                    },
                    'default': 0.0,
                },
                'required': False,
            },
            'failure_threshold': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'int', 'ge': 1},
                    'default': 3,
                },
                'required': False,
            },
            'success_threshold': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'int', 'ge': 1},
                    'default': 1,
                },
                'required': False,
            },
        },
        'config': {'extra_fields_behavior': 'forbid', 'title': 'Health'},
        'extra_behavior': 'forbid',
    },
}

RESTART = {
    'type': 'function-after',
    'function': {'type': 'no-info', 'function': make('Restart')},
    'schema': {
        'type': 'typed-dict',
        'fields': {
            'policy': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'literal',
                        'expected': ['always', 'on-failure', 'no'],
                    },
                    'default': 'on-failure',
                },
                'required': False,
            },
            'backoff': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'function-before',
                        'function': {
                            'type': 'no-info',
                            'function': _frozen.parse_duration,
                        },
                        'schema': {'type': 'float'},
                    },
                    'default': 1.0,
                },
                'required': False,
            },
            'backoff_max': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'function-before',
                        'function': {
                            'type': 'no-info',
                            'function': _frozen.parse_duration,
                        },
                        'schema': {'type': 'float'},
                    },
                    'default': 30.0,
                },
                'required': False,
            },
            'max_restarts': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'nullable', 'schema': {'type': 'int', 'ge': 0}},
                    'default': None,
                },
                'required': False,
            },
            'reset_after': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'function-before',
                        'function': {
                            'type': 'no-info',
                            'function': _frozen.parse_duration,
                        },
                        'schema': {'type': 'float'},
                    },
                    'default': 60.0,
                },
                'required': False,
            },
        },
        'config': {'extra_fields_behavior': 'forbid', 'title': 'Restart'},
        'extra_behavior': 'forbid',
    },
    'ref': 'lsq.manifest._schema.Restart',
}

ROUTE = {
    'type': 'function-after',
    'function': {'type': 'no-info', 'function': make('Route')},
    'schema': {
        'type': 'typed-dict',
        'fields': {
            'prefix': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'function-after',
                    'function': {'type': 'no-info', 'function': _rules.prefix_slash},
                    'schema': {'type': 'str'},
                },
                'required': True,
            },
            'strip': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'bool'},
                    'default': True,
                },
                'required': False,
            },
            'policy': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'nullable',
                        'schema': {
                            'type': 'definition-ref',
                            'schema_ref': 'lsq.manifest._schema.Policy',
                        },
                    },
                    'default': None,
                },
                'required': False,
            },
        },
        'config': {'extra_fields_behavior': 'forbid', 'title': 'Route'},
        'extra_behavior': 'forbid',
    },
    'ref': 'lsq.manifest._schema.Route',
}

SMOKEREQUEST = {
    'type': 'function-after',
    'function': {'type': 'no-info', 'function': make('SmokeRequest')},
    'schema': {
        'type': 'typed-dict',
        'fields': {
            'path': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'function-after',
                    'function': {'type': 'no-info', 'function': _rules.path_slash},
                    'schema': {'type': 'str'},
                },
                'required': True,
            },
            'method': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'literal',
                        'expected': ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS'],
                    },
                    'default': 'GET',
                },
                'required': False,
            },
            'status': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'int', 'ge': 100, 'le': 599},
                    'default': 200,
                },
                'required': False,
            },
            'contains': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'nullable', 'schema': {'type': 'str'}},
                    'default': None,
                },
                'required': False,
            },
        },
        'config': {'extra_fields_behavior': 'forbid', 'title': 'SmokeRequest'},
        'extra_behavior': 'forbid',
    },
    'ref': 'lsq.manifest._schema.SmokeRequest',
}

ANALYSIS = {
    'type': 'function-after',
    'function': {'type': 'no-info', 'function': make('Analysis')},
    'schema': {
        'type': 'typed-dict',
        'fields': {
            'min_requests': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'int', 'ge': 1},
                    'default': 50,
                },
                'required': False,
            },
            'max_error_increase': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'float', 'ge': 0, 'le': 1},
                    'default': 0.01,
                },
                'required': False,
            },
            'max_p99_ratio': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'float', 'ge': 1},
                    'default': 1.5,
                },
                'required': False,
            },
            'p99_slack': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'function-before',
                        'function': {
                            'type': 'no-info',
                            'function': _frozen.parse_duration,
                        },
                        'schema': {'type': 'float'},
                    },
                    'default': 0.05,
                },
                'required': False,
            },
            'extend': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'int', 'ge': 0, 'le': 100},
                    'default': 3,
                },
                'required': False,
            },
            'on_inconclusive': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'literal', 'expected': ['rollback', 'promote']},
                    'default': 'rollback',
                },
                'required': False,
            },
        },
        'config': {'extra_fields_behavior': 'forbid', 'title': 'Analysis'},
        'extra_behavior': 'forbid',
    },
    'ref': 'lsq.manifest._schema.Analysis',
}

RELEASE = {
    'type': 'function-after',
    'function': {'type': 'no-info', 'function': make('Release')},
    'schema': {
        'type': 'typed-dict',
        'fields': {
            'strategy': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'literal', 'expected': ['blue-green', 'canary']},
                    'default': 'blue-green',
                },
                'required': False,
            },
            'steps': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'function-after',
                        'function': {
                            'type': 'no-info',
                            'function': _rules.rising_steps,
                        },
                        'schema': {'type': 'list', 'items_schema': {'type': 'int'}},
                    },
                    'default_factory': defaults([5, 25, 50, 100]),
                    'default_factory_takes_data': False,
                },
                'required': False,
            },
            'step_time': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'function-before',
                        'function': {
                            'type': 'no-info',
                            'function': _frozen.parse_duration,
                        },
                        'schema': {'type': 'float'},
                    },
                    'default': 30.0,
                },
                'required': False,
            },
            'ready_timeout': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'function-before',
                        'function': {
                            'type': 'no-info',
                            'function': _frozen.parse_duration,
                        },
                        'schema': {'type': 'float'},
                    },
                    'default': 60.0,
                },
                'required': False,
            },
            'drain_timeout': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'function-before',
                        'function': {
                            'type': 'no-info',
                            'function': _frozen.parse_duration,
                        },
                        'schema': {'type': 'float'},
                    },
                    'default': 30.0,
                },
                'required': False,
            },
            'warm': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'function-before',
                        'function': {
                            'type': 'no-info',
                            'function': _frozen.parse_duration,
                        },
                        'schema': {'type': 'float'},
                    },
                    'default': 60.0,
                },
                'required': False,
            },
            'smoke': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'list', 'items_schema': SMOKEREQUEST},
                    'default_factory': list,
                    'default_factory_takes_data': False,
                },
                'required': False,
            },
            'analysis': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': ANALYSIS,
                    'default_factory': defaults(make('Analysis')({'min_requests': 50, 'max_error_increase': 0.01, 'max_p99_ratio': 1.5, 'p99_slack': 0.05, 'extend': 3, 'on_inconclusive': 'rollback'})),
                    'default_factory_takes_data': False,
                },
                'required': False,
            },
        },
        'config': {'extra_fields_behavior': 'forbid', 'title': 'Release'},
        'extra_behavior': 'forbid',
    },
    'ref': 'lsq.manifest._schema.Release',
}

SERVICE = {
    'type': 'function-after',
    'function': {'type': 'no-info', 'function': make('Service')},
    'schema': {
        'type': 'typed-dict',
        'fields': {
            'command': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'nullable',
                        'schema': {
                            'type': 'union',
                            'choices': [{'type': 'str'}, {'type': 'list', 'items_schema': {'type': 'str'}}],
                        },
                    },
                    'default': None,
                },
                'required': False,
            },
            'cwd': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'nullable', 'schema': {'type': 'str'}},
                    'default': None,
                },
                'required': False,
            },
            'env': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'dict',
                        'keys_schema': {'type': 'str'},
                        'values_schema': {'type': 'str'},
                    },
                    'default_factory': dict,
                    'default_factory_takes_data': False,
                },
                'required': False,
            },
            'env_file': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'function-before',
                        'function': {'type': 'no-info', 'function': _rules.one_or_many},
                        'schema': {'type': 'list', 'items_schema': {'type': 'str'}},
                    },
                    'default_factory': list,
                    'default_factory_takes_data': False,
                },
                'required': False,
            },
            'port': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'nullable',
                        'schema': {'type': 'int', 'strict': True, 'ge': 1, 'le': 65535},
                    },
                    'default': None,
                },
                'required': False,
            },
            'replicas': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'int', 'ge': 0, 'le': 256, 'strict': True},
                    'default': 1,
                },
                'required': False,
            },
            'health': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'nullable',
                        'schema': {
                            'type': 'function-after',
                            'function': {
                                'type': 'no-info',
                                'function': _rules.one_health_kind,
                            },
                            'schema': HEALTH,
                            'ref': 'lsq.manifest._schema.Health',
                        },
                    },
                    'default': None,
                },
                'required': False,
            },
            'depends_on': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'function-before',
                        'function': {
                            'type': 'no-info',
                            'function': _rules.depends_shorthand,
                        },
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
                    'default_factory': dict,
                    'default_factory_takes_data': False,
                },
                'required': False,
            },
            'restart': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'function-before',
                        'function': {
                            'type': 'no-info',
                            'function': _rules.restart_shorthand,
                        },
                        'schema': RESTART,
                    },
                    'default_factory': defaults(make('Restart')({'policy': 'on-failure', 'backoff': 1.0, 'backoff_max': 30.0, 'max_restarts': None, 'reset_after': 60.0})),
                    'default_factory_takes_data': False,
                },
                'required': False,
            },
            'startup_timeout': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'function-before',
                        'function': {
                            'type': 'no-info',
                            'function': _frozen.parse_duration,
                        },
                        'schema': {'type': 'float'},
                    },
                    'default': 120.0,
                },
                'required': False,
            },
            'stop_signal': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'literal',
                        'expected': ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGKILL'],
                    },
                    'default': 'SIGTERM',
                },
                'required': False,
            },
            'stop_timeout': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'function-before',
                        'function': {
                            'type': 'no-info',
                            'function': _frozen.parse_duration,
                        },
                        'schema': {'type': 'float'},
                    },
                    'default': 10.0,
                },
                'required': False,
            },
            'data': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'nullable',
                        'schema': {
                            'type': 'literal',
                            'expected': ['sqlite', 'postgres', 'sql'],
                        },
                    },
                    'default': None,
                },
                'required': False,
            },
            'external': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'nullable', 'schema': {'type': 'str'}},
                    'default': None,
                },
                'required': False,
            },
            'routes': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'list', 'items_schema': ROUTE},
                    'default_factory': list,
                    'default_factory_takes_data': False,
                },
                'required': False,
            },
            'policy': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'nullable',
                        'schema': {
                            'type': 'definition-ref',
                            'schema_ref': 'lsq.manifest._schema.Policy',
                        },
                    },
                    'default': None,
                },
                'required': False,
            },
            'release': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'nullable', 'schema': RELEASE},
                    'default': None,
                },
                'required': False,
            },
        },
        'config': {'extra_fields_behavior': 'forbid', 'title': 'Service'},
        'extra_behavior': 'forbid',
    },
}

GATEWAY = {
    'type': 'function-after',
    'function': {'type': 'no-info', 'function': make('Gateway')},
    'schema': {
        'type': 'typed-dict',
        'fields': {
            'ingress_port': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'nullable',
                        'schema': {'type': 'int', 'ge': 1, 'le': 65535},
                    },
                    'default': None,
                },
                'required': False,
            },
            'workers': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'int', 'ge': 1, 'le': 64},
                    'default': 1,
                },
                'required': False,
            },
            'trusted_proxies': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'list', 'items_schema': {'type': 'str'}},
                    'default_factory': defaults(['127.0.0.1/32', '::1/128']),
                    'default_factory_takes_data': False,
                },
                'required': False,
            },
            'header_timeout': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'function-before',
                        'function': {
                            'type': 'no-info',
                            'function': _frozen.parse_duration,
                        },
                        'schema': {'type': 'float'},
                    },
                    'default': 10.0,
                },
                'required': False,
            },
            'idle_timeout': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'function-before',
                        'function': {
                            'type': 'no-info',
                            'function': _frozen.parse_duration,
                        },
                        'schema': {'type': 'float'},
                    },
                    'default': 60.0,
                },
                'required': False,
            },
            'access_log': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'bool'},
                    'default': True,
                },
                'required': False,
            },
        },
        'config': {'extra_fields_behavior': 'forbid', 'title': 'Gateway'},
        'extra_behavior': 'forbid',
    },
    'ref': 'lsq.manifest._schema.Gateway',
}

MANIFEST = {
    'type': 'function-after',
    'function': {'type': 'no-info', 'function': make('Manifest')},
    'schema': {
        'type': 'typed-dict',
        'fields': {
            'name': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'nullable', 'schema': {'type': 'str'}},
                    'default': None,
                },
                'required': False,
            },
            'services': {
                'type': 'typed-dict-field',
                'schema': {
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
                'required': True,
            },
            'gateway': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': GATEWAY,
                    'default_factory': defaults(make('Gateway')({'ingress_port': None, 'workers': 1, 'trusted_proxies': ['127.0.0.1/32', '::1/128'], 'header_timeout': 10.0, 'idle_timeout': 60.0, 'access_log': True})),
                    'default_factory_takes_data': False,
                },
                'required': False,
            },
        },
        'config': {'extra_fields_behavior': 'forbid', 'title': 'Manifest'},
        'extra_behavior': 'forbid',
    },
    'ref': 'lsq.manifest._schema.Manifest',
}

RETRIES = {
    'type': 'function-after',
    'function': {'type': 'no-info', 'function': make('Retries')},
    'schema': {
        'type': 'typed-dict',
        'fields': {
            'attempts': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'nullable',
                        'schema': {'type': 'int', 'ge': 0, 'le': 10},
                    },
                    'default': None,
                },
                'required': False,
            },
            'budget_ratio': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'nullable',
                        'schema': {'type': 'float', 'ge': 0, 'le': 1},
                    },
                    'default': None,
                },
                'required': False,
            },
            'budget_per_s': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'nullable',
                        'schema': {'type': 'float', 'ge': 0},
                    },
                    'default': None,
                },
                'required': False,
            },
            'backoff_base': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'nullable',
                        'schema': {
                            'type': 'function-before',
                            'function': {
                                'type': 'no-info',
                                'function': _frozen.parse_duration,
                            },
                            'schema': {'type': 'float'},
                        },
                    },
                    'default': None,
                },
                'required': False,
            },
            'backoff_cap': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'nullable',
                        'schema': {
                            'type': 'function-before',
                            'function': {
                                'type': 'no-info',
                                'function': _frozen.parse_duration,
                            },
                            'schema': {'type': 'float'},
                        },
                    },
                    'default': None,
                },
                'required': False,
            },
        },
        'config': {'extra_fields_behavior': 'forbid', 'title': 'Retries'},
        'extra_behavior': 'forbid',
    },
    'ref': 'lsq.manifest._schema.Retries',
}

OUTLIER = {
    'type': 'function-after',
    'function': {'type': 'no-info', 'function': make('Outlier')},
    'schema': {
        'type': 'typed-dict',
        'fields': {
            'consecutive_failures': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'nullable', 'schema': {'type': 'int', 'ge': 1}},
                    'default': None,
                },
                'required': False,
            },
            'base_ejection': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'nullable',
                        'schema': {
                            'type': 'function-before',
                            'function': {
                                'type': 'no-info',
                                'function': _frozen.parse_duration,
                            },
                            'schema': {'type': 'float'},
                        },
                    },
                    'default': None,
                },
                'required': False,
            },
            'max_ejected_ratio': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'nullable',
                        'schema': {'type': 'float', 'ge': 0, 'le': 1},
                    },
                    'default': None,
                },
                'required': False,
            },
        },
        'config': {'extra_fields_behavior': 'forbid', 'title': 'Outlier'},
        'extra_behavior': 'forbid',
    },
    'ref': 'lsq.manifest._schema.Outlier',
}

BREAKER = {
    'type': 'function-after',
    'function': {'type': 'no-info', 'function': make('Breaker')},
    'schema': {
        'type': 'typed-dict',
        'fields': {
            'enabled': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'nullable', 'schema': {'type': 'bool'}},
                    'default': None,
                },
                'required': False,
            },
        },
        'config': {'extra_fields_behavior': 'forbid', 'title': 'Breaker'},
        'extra_behavior': 'forbid',
    },
    'ref': 'lsq.manifest._schema.Breaker',
}

POLICY = {
    'type': 'function-after',
    'function': {'type': 'no-info', 'function': make('Policy')},
    'schema': {
        'type': 'typed-dict',
        'fields': {
            'connect_timeout': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'nullable',
                        'schema': {
                            'type': 'function-before',
                            'function': {
                                'type': 'no-info',
                                'function': _frozen.parse_duration,
                            },
                            'schema': {'type': 'float'},
                        },
                    },
                    'default': None,
                },
                'required': False,
            },
            'try_timeout': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'nullable',
                        'schema': {
                            'type': 'function-before',
                            'function': {
                                'type': 'no-info',
                                'function': _frozen.parse_duration,
                            },
                            'schema': {'type': 'float'},
                        },
                    },
                    'default': None,
                },
                'required': False,
            },
            'timeout': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {
                        'type': 'nullable',
                        'schema': {
                            'type': 'function-before',
                            'function': {
                                'type': 'no-info',
                                'function': _frozen.parse_duration,
                            },
                            'schema': {'type': 'float'},
                        },
                    },
                    'default': None,
                },
                'required': False,
            },
            'retries': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'nullable', 'schema': RETRIES},
                    'default': None,
                },
                'required': False,
            },
            'outlier': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'nullable', 'schema': OUTLIER},
                    'default': None,
                },
                'required': False,
            },
            'breaker': {
                'type': 'typed-dict-field',
                'schema': {
                    'type': 'default',
                    'schema': {'type': 'nullable', 'schema': BREAKER},
                    'default': None,
                },
                'required': False,
            },
        },
        'config': {'extra_fields_behavior': 'forbid', 'title': 'Policy'},
        'extra_behavior': 'forbid',
    },
    'ref': 'lsq.manifest._schema.Policy',
}

SCHEMA = {'type': 'definitions', 'schema': MANIFEST, 'definitions': [POLICY]}
