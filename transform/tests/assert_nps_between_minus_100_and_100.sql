-- NPS is a difference of two shares of the same answers, in percent.
select survey_id, question_id, week_start, nps
from {{ ref('hotjar__nps') }}
where nps is null or nps < -100 or nps > 100
