"""The GraphQL schema: each app contributes `<App>Queries` / `<App>Mutations`, assembled here.

The realtime app adds `Subscription`. The agents app fills `WorkflowInstance.agents` (registered here: the
workflows layer may not import it). Field names follow the product documents (llmProviders, costAnalytics,
setBudget, createAgent, …).
"""

import graphene

from apps.agents.graphql.mutations.agent_create import CreateAgent
from apps.agents.graphql.mutations.agent_execute import ExecuteAgent
from apps.agents.graphql.mutations.place_agent_create import CreatePlaceAgentConfig
from apps.agents.graphql.mutations.place_agents_trigger import TriggerPlaceAgents
from apps.agents.graphql.queries import AgentsQueries
from apps.agents.selectors import instance_agents
from apps.billing.graphql.mutations.budget_set import SetBudget
from apps.billing.graphql.queries import BillingQueries
from apps.functions.graphql.mutations.function_create import CreateFunction
from apps.functions.graphql.mutations.function_execute import ExecuteFunction
from apps.functions.graphql.queries import FunctionsQueries
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
from apps.workflows.graphql.types import register_instance_agents


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


class AgentsMutations(graphene.ObjectType):
    create_agent = CreateAgent.Field()
    create_place_agent_config = CreatePlaceAgentConfig.Field()
    execute_agent = ExecuteAgent.Field()
    trigger_place_agents = TriggerPlaceAgents.Field()


class FunctionsMutations(graphene.ObjectType):
    create_function = CreateFunction.Field()
    execute_function = ExecuteFunction.Field()


QUERIES = (SystemQueries, ProvidersQueries, BillingQueries, RulesQueries, WorkflowsQueries, AgentsQueries,
           FunctionsQueries)
MUTATIONS = (SystemMutations, ProvidersMutations, BillingMutations, RulesMutations, WorkflowsMutations,
             AgentsMutations, FunctionsMutations)
register_instance_agents(instance_agents)


class Query(*QUERIES, graphene.ObjectType):
    pass


class Mutation(*MUTATIONS, graphene.ObjectType):
    pass


schema = graphene.Schema(query=Query, mutation=Mutation, subscription=Subscription)
