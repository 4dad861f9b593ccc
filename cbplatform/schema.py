"""The GraphQL schema: each app contributes `<App>Queries` / `<App>Mutations`, assembled here.

Apps still to come (agents, functions) add their classes to QUERIES / MUTATIONS; the realtime app adds
`Subscription`. Field names follow the product documents (llmProviders, costAnalytics, setBudget, …).
"""

import graphene

from apps.billing.graphql.mutations.budget_set import SetBudget
from apps.billing.graphql.queries import BillingQueries
from apps.providers.graphql.mutations.llm_provider_configure import ConfigureLlmProvider
from apps.providers.graphql.queries import ProvidersQueries
from apps.realtime.graphql.subscriptions import Subscription
from apps.rules.graphql.mutations.rule_create import CreateRule
from apps.rules.graphql.mutations.rule_delete import DeleteRule
from apps.rules.graphql.mutations.rule_evaluate import EvaluateRule
from apps.rules.graphql.mutations.rule_update import UpdateRule
from apps.rules.graphql.queries import RulesQueries
from apps.system.graphql.mutations.completion_create import CreateCompletion
from apps.system.graphql.queries import SystemQueries
from apps.workflows.graphql.mutations.instance_create import CreateWorkflowInstance
from apps.workflows.graphql.mutations.token_create import CreateResource, CreateToken
from apps.workflows.graphql.mutations.transition_fire import ExecuteActivity, FireTransition
from apps.workflows.graphql.mutations.workflow_create import CreateWorkflow
from apps.workflows.graphql.queries import WorkflowsQueries


class ProvidersMutations(graphene.ObjectType):
    configure_llm_provider = ConfigureLlmProvider.Field()


class BillingMutations(graphene.ObjectType):
    set_budget = SetBudget.Field()


class RulesMutations(graphene.ObjectType):
    create_rule = CreateRule.Field()
    update_rule = UpdateRule.Field()
    delete_rule = DeleteRule.Field()
    evaluate_rule = EvaluateRule.Field()


class WorkflowsMutations(graphene.ObjectType):
    create_workflow = CreateWorkflow.Field()
    create_workflow_instance = CreateWorkflowInstance.Field()
    create_token = CreateToken.Field()
    create_resource = CreateResource.Field(description="Same as createToken.")
    fire_transition = FireTransition.Field()
    execute_activity = ExecuteActivity.Field(description="Same as fireTransition.")


class SystemMutations(graphene.ObjectType):
    create_completion = CreateCompletion.Field()


QUERIES = (SystemQueries, ProvidersQueries, BillingQueries, RulesQueries, WorkflowsQueries)
MUTATIONS = (SystemMutations, ProvidersMutations, BillingMutations, RulesMutations, WorkflowsMutations)


class Query(*QUERIES, graphene.ObjectType):
    pass


class Mutation(*MUTATIONS, graphene.ObjectType):
    pass


schema = graphene.Schema(query=Query, mutation=Mutation, subscription=Subscription)
